"""One-to-many: one input, a sequence out - spell a number, 42 -> "forty two".

The code is the module ``rnnfast.examples.spell_number`` (python/rnnfast/examples/spell_number.py in the repository),
installed with the package so that ``rnnfast demo spell_number`` runs it too. ``--help`` lists the options.
"""

import sys
from pathlib import Path

try:
    import rnnfast  # noqa: F401
except ImportError:  # a source checkout that is not installed: use the package built in place
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from rnnfast.examples.spell_number import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
