"""Fixtures of the interop tests (tests/interop/)."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")  # before anything imports keras: this file is imported first

import pytest  # noqa: E402

from helpers.interop_checks import MAX_DIFF  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _report():
    """After each module, the largest difference from each framework (seen with ``-s``)."""
    yield
    if MAX_DIFF:
        print("\nlargest difference / max(max|reference|, 1) per framework and dtype:")
        for (fw, dt), v in sorted(MAX_DIFF.items()):
            print(f"  {fw:28s} {dt:8s} {v:.3g}")
        MAX_DIFF.clear()
