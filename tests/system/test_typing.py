"""The public API's types under ``mypy --strict`` (skipped where mypy is not installed: ``pip install
".[typecheck]"``): the checks of the repository's mypy configuration (pyproject.toml, ``[tool.mypy]``), which
.ci/typecheck runs as well, in one mypy run whose errors each test reads for its own files.

- tests/system/typing_user_code.py, typical user code whose ``assert_type`` lines and required errors (``#
  type: ignore[code]`` lines, reported when the error goes away) fail when a public type regresses;
- the examples (examples/*.py and python/rnnfast/examples/*.py);
- the modules of the public layer API themselves.

And that the check can fail: a file of wrong claims about the same types, checked in the same run, must give an
error on each of its marked lines.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]  # tests/system/ -> the repository
SAMPLE = "tests/system/typing_user_code.py"
LIBRARY = ["python/rnnfast/layers.py", "python/rnnfast/_rnn_base.py", "python/rnnfast/stepper.py",
           "python/rnnfast/functional.py", "python/rnnfast/quantization.py", "python/rnnfast/_types.py"]
EXAMPLE_DIRS = ["examples", "python/rnnfast/examples"]

# Each line claims a type the API must NOT have; mypy must report an error on every line marked "# wrong".
WRONG_CLAIMS = textwrap.dedent('''\
    import numpy as np
    from typing_extensions import assert_type

    import rnnfast

    x = np.zeros((3, 1, 4), dtype=np.float32)
    assert_type(rnnfast.GRU(4, 8)(x), tuple[np.ndarray, tuple[np.ndarray, np.ndarray]])  # wrong
    assert_type(rnnfast.LSTM(4, 8)(x), tuple[np.ndarray, np.ndarray])  # wrong
    assert_type(rnnfast.RNN(4, 8).backward(x), tuple[np.ndarray, tuple[np.ndarray, np.ndarray]])  # wrong
    assert_type(rnnfast.LSTM(4, 8).stepper().state, np.ndarray)  # wrong
    assert_type(rnnfast.quantize(rnnfast.GRU(4, 8), "int8"), rnnfast.LSTM)  # wrong
    assert_type(rnnfast.gru(x, None, x[0], x[0], training=True), tuple[np.ndarray, np.ndarray])  # wrong
    ''')

_ERROR = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+): error: (?P<message>.*)$")


@pytest.fixture(scope="module")
def mypy_errors(tmp_path_factory):
    """{path relative to the repository: [(line, message)]} of one ``mypy --strict`` run over the configured files
    and the wrong claims."""
    pytest.importorskip("mypy", reason="mypy is not installed (pip install '.[typecheck]')")
    if not (REPO / "pyproject.toml").is_file() or not (REPO / SAMPLE).is_file():
        pytest.skip("not a source checkout (no pyproject.toml or typing sample)")
    tmp = tmp_path_factory.mktemp("typing")
    wrong = tmp / "wrong_claims.py"
    wrong.write_text(WRONG_CLAIMS)
    files = [SAMPLE] + LIBRARY + [d for d in EXAMPLE_DIRS if (REPO / d).is_dir()] + [str(wrong)]
    # The configuration's options (strict, mypy_path, follow_imports); the files named here replace its list,
    # so that the wrong claims are checked in the same run. A cache of its own: no .mypy_cache in the checkout.
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(REPO / "pyproject.toml"), "--strict",
           "--cache-dir", str(tmp / "cache"), "--no-color-output", "--no-error-summary", "--show-absolute-path"]
    run = subprocess.run(cmd + files, cwd=REPO, capture_output=True, text=True, timeout=600)
    errors: dict = defaultdict(list)
    for line in run.stdout.splitlines():
        m = _ERROR.match(line)
        if m:
            path = Path(m["path"])
            if path == wrong:
                key = "<wrong>"
            else:
                key = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
            errors[key].append((int(m["line"]), m["message"]))
    if run.returncode not in (0, 1) or (run.returncode == 1 and not errors):
        pytest.fail(f"mypy did not run (exit {run.returncode}):\n{run.stdout}\n{run.stderr}")
    return errors


def _report(errors: dict, paths) -> str:
    return "\n".join(f"{p}:{line}: {msg}" for p in sorted(paths) for line, msg in errors[p])


def test_user_code_has_the_public_types(mypy_errors):
    assert SAMPLE not in mypy_errors, "\n" + _report(mypy_errors, [SAMPLE])


def test_public_layer_modules_pass_strict(mypy_errors):
    bad = [p for p in LIBRARY if p in mypy_errors]
    assert not bad, "\n" + _report(mypy_errors, bad)


def test_examples_pass_strict(mypy_errors):
    bad = [p for p in mypy_errors if any(p.startswith(d + "/") for d in EXAMPLE_DIRS)]
    assert not bad, "\n" + _report(mypy_errors, bad)


def test_nothing_else_is_reported(mypy_errors):
    """Errors outside the checked files (a stub such as _core.pyi is always reported) fail too."""
    known = {SAMPLE, "<wrong>", *LIBRARY}
    other = [p for p in mypy_errors if p not in known and not any(p.startswith(d + "/") for d in EXAMPLE_DIRS)]
    assert not other, "\n" + _report(mypy_errors, other)


def test_the_check_can_fail(mypy_errors):
    marked = {i + 1 for i, line in enumerate(WRONG_CLAIMS.splitlines()) if line.endswith("# wrong")}
    flagged = {line for line, msg in mypy_errors.get("<wrong>", []) if "[assert-type]" in msg}
    assert flagged == marked, mypy_errors.get("<wrong>")
