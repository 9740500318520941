"""Fixtures shared by the test groups (kernels/, api/, interop/, system/). Plain helper functions and constants
are in helpers/ (imported as ``helpers.<module>``); fixtures of one group only are in its own conftest.py."""

from __future__ import annotations

import pytest

import rnnfast
import rnnfast._rnn_base as rnn_base
from rnnfast import _core, reference


@pytest.fixture
def restore_threads():
    """The kernels' thread count, put back after the test."""
    before = rnnfast.get_num_threads()
    yield
    rnnfast.set_num_threads(before)


@pytest.fixture
def restore_split():
    """How the forward's time loop is shared among threads (_core.testing.set_split), put back after the test."""
    before = _core.testing.get_split()
    yield
    _core.testing.set_split(before)


@pytest.fixture(params=["functional", "reference"])
def backend(request, monkeypatch):
    """Run the test on the native ops and again with the layers' ops swapped for rnnfast.reference."""
    if request.param == "reference":
        monkeypatch.setattr(rnn_base, "functional_ops", lambda: reference)
    return request.param
