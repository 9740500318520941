"""Time series: forecast a noisy signal, then detect anomalies in a stream of it.

The code is the module ``rnnfast.examples.timeseries`` (python/rnnfast/examples/timeseries.py in the repository),
installed with the package so that ``rnnfast demo timeseries`` runs it too. ``--help`` lists the options.
"""

import sys
from pathlib import Path

try:
    import rnnfast  # noqa: F401
except ImportError:  # a source checkout that is not installed: use the package built in place
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))

from rnnfast.examples.timeseries import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
