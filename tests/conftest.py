"""Fixtures shared by more than one test folder."""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.alerts.smtpserver import SmtpServer


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 and a free port, stopped after the test."""
    server = SmtpServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
