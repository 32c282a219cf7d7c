from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.alerts.helpers import Clock
from tests.alerts.smtpserver import SmtpServer


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    server = SmtpServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()
