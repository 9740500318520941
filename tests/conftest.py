"""Fixtures shared by the test modules."""

from __future__ import annotations

import pytest

import rnnfast
from rnnfast import _core


@pytest.fixture
def restore_threads():
    """The kernels' thread count, put back after the test."""
    before = rnnfast.get_num_threads()
    yield
    rnnfast.set_num_threads(before)


@pytest.fixture
def restore_split():
    """How the forward's time loop is shared among threads (_core.set_split), put back after the test."""
    before = _core.get_split()
    yield
    _core.set_split(before)


@pytest.fixture
def restore_projection():
    """Where the forward computes its input projection (_core.set_projection), put back after the test."""
    before = _core.get_projection()
    yield
    _core.set_projection(before)
