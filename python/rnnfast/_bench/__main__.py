"""``python -m rnnfast._bench``: the same as ``rnnfast bench``."""
import sys

from rnnfast._bench.command_line import main

sys.exit(main())
