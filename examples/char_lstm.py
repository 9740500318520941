"""Character-level text generation as the classic tutorial does it, with an LSTM instead of the relu RNN.

The code is the module ``rnnfast.examples.char_rnn`` (python/rnnfast/examples/char_rnn.py in the repository),
installed with the package so that ``rnnfast demo char_lstm`` runs it too. ``--help`` lists the options.
"""

import sys
from pathlib import Path

try:
    import rnnfast  # noqa: F401
except ImportError:  # a source checkout that is not installed: use the package built in place
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from rnnfast.examples.char_rnn import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], cell="lstm"))
