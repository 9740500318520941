"""Fixtures of the kernel tests (tests/kernels/) only; those shared with other groups are in tests/conftest.py."""

from __future__ import annotations

import pytest

from rnnfast import _core


@pytest.fixture
def restore_projection():
    """Where the forward computes its input projection (_core.testing.set_projection), put back after the test."""
    before = _core.testing.get_projection()
    yield
    _core.testing.set_projection(before)
