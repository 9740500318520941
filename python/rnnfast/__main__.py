"""``python -m rnnfast``: see :mod:`rnnfast.cli`."""
import sys

from rnnfast.cli import main

sys.exit(main())
