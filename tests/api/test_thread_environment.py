"""The thread count from the environment at import (RNNFAST_NUM_THREADS, else OMP_NUM_THREADS), each case in a
fresh interpreter, since it is read once, when rnnfast is imported."""

import json
import os
import subprocess
import sys

import pytest

import rnnfast

_PROBE = ("import json, warnings, rnnfast\n"
          "print(json.dumps({'threads': rnnfast.get_num_threads()}))\n")


def _import_with(env_changes: dict) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RNNFAST_NUM_THREADS", "OMP_NUM_THREADS")}
    env.update(env_changes)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.dirname(os.path.dirname(rnnfast.__file__)),
                                                    env.get("PYTHONPATH", "")) if p)
    done = subprocess.run([sys.executable, "-W", "always", "-c", _PROBE], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["threads"], done.stderr


def _default() -> int:
    return _import_with({})[0]


@pytest.mark.parametrize("env, expected", [
    ({"RNNFAST_NUM_THREADS": "1"}, 1),
    ({"RNNFAST_NUM_THREADS": " 3 "}, 3),
    ({"OMP_NUM_THREADS": "1"}, 1),
    ({"OMP_NUM_THREADS": "3,2"}, 3),                           # OpenMP's nesting list: the first level applies
    ({"RNNFAST_NUM_THREADS": "3", "OMP_NUM_THREADS": "1"}, 3),  # rnnfast's own variable wins
])
def test_the_environment_sets_the_threads_at_import(env, expected):
    threads, stderr = _import_with(env)
    assert threads == expected
    assert "Warning" not in stderr


@pytest.mark.parametrize("value", ["many", "0", "-2", "1.5", "100000"])
def test_a_bad_rnnfast_num_threads_is_ignored_with_a_warning(value):
    threads, stderr = _import_with({"RNNFAST_NUM_THREADS": value, "OMP_NUM_THREADS": "1"})
    assert threads == 1, "falls back to OMP_NUM_THREADS"
    assert "RuntimeWarning" in stderr and "RNNFAST_NUM_THREADS" in stderr and repr(value) in stderr


@pytest.mark.parametrize("value", ["", "abc", "0"])
def test_an_omp_num_threads_openmp_would_reject_is_left_alone(value):
    threads, stderr = _import_with({"OMP_NUM_THREADS": value})
    assert threads == _default()
    assert "Warning" not in stderr


def test_set_num_threads_after_import_wins():
    probe = ("import rnnfast; rnnfast.set_num_threads(2); print(rnnfast.get_num_threads())")
    env = dict(os.environ, RNNFAST_NUM_THREADS="1",
               PYTHONPATH=os.path.dirname(os.path.dirname(rnnfast.__file__)))
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120,
                          check=True)
    assert done.stdout.strip() == "2"
