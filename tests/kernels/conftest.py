"""Fixtures of the kernel tests (tests/kernels/) only; those shared with other groups are in tests/conftest.py."""

from __future__ import annotations

import pytest

from rnnfast import _core


@pytest.fixture
def restore_projection():
    """Where the forward computes its input projection (_core.set_projection), put back after the test."""
    before = _core.get_projection()
    yield
    _core.set_projection(before)
