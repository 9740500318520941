"""One-to-one: one input, one output - an RNN over a single time step, as a plain classifier.

The code is the module ``rnnfast.examples.one_to_one`` (python/rnnfast/examples/one_to_one.py in the repository),
installed with the package so that ``rnnfast demo one_to_one`` runs it too. ``--help`` lists the options.
"""

import sys
from pathlib import Path

try:
    import rnnfast  # noqa: F401
except ImportError:  # a source checkout that is not installed: use the package built in place
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from rnnfast.examples.one_to_one import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
