"""Fixtures of the alert tests (`smtp` is in tests/conftest.py)."""
from __future__ import annotations

import pytest

from tests.alerts.helpers import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()
