"""The engines are optional: `import rnnfast` (and rnnfast.parallel) imports neither rnnfast.dask nor rnnfast.ray,
nor dask, distributed or ray. Runs whether or not the engines are installed."""

from __future__ import annotations

import json
import subprocess
import sys

ENGINES = ("dask", "distributed", "ray", "rnnfast.dask", "rnnfast.ray")


def test_import_rnnfast_imports_no_engine():
    code = ("import json, sys, rnnfast, rnnfast.parallel, rnnfast.nn; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'ray') "
            "or m.startswith(('rnnfast.dask', 'rnnfast.ray')))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=None).stdout
    assert json.loads(out) == []
