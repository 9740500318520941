"""Bad input, table-driven (see helpers/bad_input_table.py): every argument of rnnfast.save and rnnfast.load
(damaged files included), rnnfast.set_num_threads, and every option of the command line."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import pytest

import rnnfast
from rnnfast import cli

from helpers.bad_input_table import OK, Row, Table, assert_every_argument_has_a_row, check_row, make, params

ROWS = Table()
row = ROWS.row


# ---------------------------------------------------------------------------------------------------
# save / load
# ---------------------------------------------------------------------------------------------------

def _tmp(name: str) -> str:
    return os.path.join(TMPDIR, name)


TMPDIR = ""  # set by the autouse fixture below, per test


def _saved(name="m.npz", model=None) -> str:
    path = _tmp(name)
    rnnfast.save(path, model if model is not None else make("GRU", num_layers=2, bidirectional=True))
    return path


def _rewrite(path: str, edit: Callable[[bytes], bytes]) -> str:
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(edit(data))
    return path


def _check_loaded_gru(m) -> None:
    ref = make("GRU", num_layers=2, bidirectional=True)
    assert type(m) is rnnfast.GRU and m.num_layers == 2 and m.bidirectional
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[k], v, err_msg=k)


row("rnnfast.save", "model", "not a layer", lambda: rnnfast.save(_tmp("a.npz"), {"w": np.zeros(3)}), TypeError)
row("rnnfast.save", "model", "None", lambda: rnnfast.save(_tmp("a.npz"), None), TypeError)
row("rnnfast.save", "path", "an int", lambda: rnnfast.save(123, make("LSTM")), TypeError)
row("rnnfast.save", "path", "directory missing", lambda: rnnfast.save(_tmp("no/such/dir/m.npz"), make("LSTM")),
    FileNotFoundError, match=r"no/such/dir|No such file")
row("rnnfast.save", "path", "without .npz suffix, loads back", lambda: rnnfast.load(_saved("model.bin")), OK,
    check=_check_loaded_gru)
row("rnnfast.load", "path", "an int", lambda: rnnfast.load(123), TypeError)
row("rnnfast.load", "path", "missing file", lambda: rnnfast.load(_tmp("absent.npz")), FileNotFoundError,
    match="absent.npz")
row("rnnfast.load", "path", "not an archive", lambda: rnnfast.load(_rewrite(_saved(), lambda d: b"hello world")),
    ValueError, match="not an rnnfast model")
row("rnnfast.load", "path", "empty file", lambda: rnnfast.load(_rewrite(_saved(), lambda d: b"")), ValueError,
    match="not an rnnfast model")
row("rnnfast.load", "path", "a plain .npz", lambda: (np.savez(_tmp("plain.npz"), a=np.zeros(3)),
                                                     rnnfast.load(_tmp("plain.npz"))), ValueError,
    match="not an rnnfast model")
for _frac in (0.1, 0.5, 0.9, 0.999):
    row("rnnfast.load", "path", f"truncated to {_frac:.1%}",
        lambda _f=_frac: rnnfast.load(_rewrite(_saved(), lambda d: d[:int(len(d) * _f)])), ValueError,
        match="truncated or damaged")
row("rnnfast.load", "path", "pickle file", lambda: rnnfast.load(_rewrite(_saved(), lambda d: __import__("pickle").dumps(
    make("LSTM")))), ValueError, match="not an rnnfast model")
row("rnnfast.load", "path", "file object", lambda: rnnfast.load(open(_saved(), "rb")), OK, check=_check_loaded_gru)
row("rnnfast.load", "seed", "str", lambda: rnnfast.load(_saved(), seed="x"), TypeError)
row("rnnfast.load", "seed", "negative", lambda: rnnfast.load(_saved(), seed=-1), ValueError)
row("rnnfast.load", "seed", "int", lambda: rnnfast.load(_saved(), seed=5), OK, check=_check_loaded_gru)


# ---------------------------------------------------------------------------------------------------
# Thread count (not in every build yet)
# ---------------------------------------------------------------------------------------------------

def _set_threads(n):
    return lambda: rnnfast.set_num_threads(n)


_THREADS = r"\bn\b|thread"
row("rnnfast.set_num_threads", "n", "zero", _set_threads(0), ValueError, match=_THREADS, needs="set_num_threads")
row("rnnfast.set_num_threads", "n", "negative", _set_threads(-2), ValueError, match=_THREADS,
    needs="set_num_threads")
row("rnnfast.set_num_threads", "n", "float", _set_threads(1.5), TypeError, match=_THREADS, needs="set_num_threads")
row("rnnfast.set_num_threads", "n", "str", _set_threads("2"), TypeError, match=_THREADS, needs="set_num_threads")
row("rnnfast.set_num_threads", "n", "None", _set_threads(None), TypeError, match=_THREADS, needs="set_num_threads")
row("rnnfast.set_num_threads", "n", "2**62", _set_threads(2 ** 62), (ValueError, OverflowError), match=_THREADS,
    needs="set_num_threads")
row("rnnfast.set_num_threads", "n", "one", _set_threads(1), OK,
    check=lambda r: rnnfast.get_num_threads() == 1 or pytest.fail("get_num_threads() != 1"),
    needs="set_num_threads")


# ---------------------------------------------------------------------------------------------------
# The command line: a bad option exits with status 2 and a usage message naming it
# ---------------------------------------------------------------------------------------------------

class UsageError(Exception):
    """Marker: the command must exit with status 2 and name the option in its message."""


def _cli(*argv):
    def run():
        try:
            code = cli.main(list(argv))
        except SystemExit as exc:
            code = exc.code
        if code == 2:  # argparse's usage-error status, or main's own
            raise UsageError()
        return code
    return run


def _exit_ok(code):
    assert code == 0, f"exit status {code}"


row("rnnfast (command)", "--shape", "three numbers", _cli("--shape", "1,2,3"), UsageError)
row("rnnfast (command)", "--shape", "zero", _cli("--shape", "0,1,2,3"), UsageError)
row("rnnfast (command)", "--shape", "not numbers", _cli("--shape", "a,b,c,d"), UsageError)
row("rnnfast (command)", "--shape", "overflowing sizes",
    _cli("--repeat", "1", "--shape", "100000000,100000000,1000,1000"), (MemoryError, ValueError), match=r".")
row("rnnfast (command)", "--repeat", "zero", _cli("--repeat", "0"), UsageError)
row("rnnfast (command)", "--repeat", "not a number", _cli("--repeat", "x"), UsageError)
row("rnnfast (command)", "--seed", "not a number", _cli("--seed", "x"), UsageError)
row("rnnfast (command)", "--seed", "negative", _cli("--seed", "-1"), UsageError)
row("rnnfast (command)", "command", "unknown", _cli("bogus"), UsageError, match="bogus|command")
row("rnnfast (command)", "--no-timing", "with a value", _cli("--no-timing=1"), UsageError, match="no-timing")
row("rnnfast (command)", "--no-timing", "valid", _cli("check", "--no-timing", "--shape", "2,1,3,4"), OK, check=_exit_ok)
row("rnnfast (command)", "name", "unknown demo", _cli("demo", "bogus"), UsageError, match="bogus")
row("rnnfast (command)", "name", "none: lists the demos", _cli("demo"), OK, check=_exit_ok)
row("rnnfast (command)", "demo_args", "unknown option", _cli("demo", "one_to_one", "--bogus-option"), UsageError,
    match="bogus-option")
# rnnfast bench (tests/system/test_bench.py runs it; these are refused before anything is timed)
row("rnnfast (command)", "--cells", "unknown", _cli("bench", "--cells", "bogus"), UsageError)
row("rnnfast (command)", "--scenarios", "unknown", _cli("bench", "--scenarios", "huge"), UsageError)
row("rnnfast (command)", "--peers", "unknown", _cli("bench", "--peers", "tensorflow"), UsageError)
row("rnnfast (command)", "--precision", "unknown", _cli("bench", "--precision", "int4"), UsageError)
row("rnnfast (command)", "--threads", "zero", _cli("bench", "--threads", "0"), UsageError)
row("rnnfast (command)", "--threads", "not a number", _cli("bench", "--threads", "x"), UsageError)
row("rnnfast (command)", "--repeat", "zero (bench)", _cli("bench", "--repeat", "0"), UsageError)
row("rnnfast (command)", "--quick", "with a value", _cli("bench", "--quick=1"), UsageError)
row("rnnfast (command)", "--tiny", "with a value", _cli("bench", "--tiny=1"), UsageError)
row("rnnfast (command)", "--json", "missing folder", _cli("bench", "--json", "/nonexistent-folder/x.json"), UsageError)
row("rnnfast (command)", "--plot", "missing folder", _cli("bench", "--plot", "/nonexistent-folder/x.png"), UsageError)


# ---------------------------------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------------------------------

pytestmark = pytest.mark.usefixtures("restore_threads")  # rows may change the thread count; put it back


@pytest.fixture(autouse=True)
def _tmpdir(tmp_path):
    """The save/load rows write their files in the test's own temporary folder (TMPDIR)."""
    global TMPDIR
    TMPDIR = str(tmp_path)
    yield


@pytest.mark.parametrize("r", params(ROWS))
def test_row(r: Row, capsys):
    """The row's call gives the right result, or raises the expected error naming the argument."""
    check_row(r, capsys)


def test_every_argument_has_a_row():
    """The table covers every argument of every public entry point of save/load, the thread count and the command line
    (the issue's definition of done)."""
    assert_every_argument_has_a_row(ROWS, "io_threads_cli")


def test_table_size():
    """A guard against the table silently shrinking (e.g. a loop that stopped generating rows)."""
    assert len(ROWS) >= 45, len(ROWS)


def test_the_command_prints_its_version(capsys):
    import rnnfast
    from rnnfast import cli

    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"rnnfast {rnnfast.__version__}"
