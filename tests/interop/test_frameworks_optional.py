"""Interop without the frameworks: importing rnnfast imports none of them, and each conversion without its
framework is an ImportError saying what to install."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import rnnfast
from rnnfast import interop

from helpers.interop_checks import make_model


def test_import_needs_no_framework():
    code = ("import sys, rnnfast; assert callable(rnnfast.from_onnx); "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'keras', 'tensorflow') if m in sys.modules))")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [os.path.dirname(rnnfast.__path__[0]), env.get("PYTHONPATH")] if p)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
    assert set(interop.__all__) <= set(rnnfast.__all__)


def test_missing_framework_import_error(monkeypatch):
    for mod in ("torch", "onnx", "keras"):
        monkeypatch.setitem(sys.modules, mod, None)   # makes "import mod" raise ImportError
    with pytest.raises(ImportError, match=r"rnnfast\[onnx\]"):
        rnnfast.to_onnx(make_model("lstm"))
    with pytest.raises(ImportError, match=r"rnnfast\[onnx\]"):
        rnnfast.from_onnx("model.onnx")
    with pytest.raises(ImportError, match="pip install torch"):
        rnnfast.from_torch(object())
    with pytest.raises(ImportError, match="pip install torch"):
        rnnfast.to_torch(make_model("gru"))
    with pytest.raises(ImportError, match="pip install keras"):
        rnnfast.from_keras(object())
