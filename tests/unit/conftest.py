"""Fixtures shared by the unit tests.

`clock` is the one fake clock (tests/harness/clock.py): a fresh one per test,
so no test sees time another test moved.
"""

from __future__ import annotations

import pytest

from tests.harness.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()
