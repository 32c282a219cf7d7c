"""A mail server that accepts the connection and then never answers: the sender gives up in time, keeps the alert,
says why, and delivers it exactly once when a real server is there; `alerts test` says it timed out."""
from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from proxy.cli import main
from proxy.context import Context
from tests.alerts.hangserver import HangingServer
from tests.alerts.helpers import Clock, evaluation, service
from tests.alerts.smtpserver import SmtpServer
from tests.support.school import write_school

TIMEOUT_S = 2
ADULT = "http://pornhub.com/"
MODES = ["connect", "data"]


@pytest.fixture(params=MODES)
async def hanging(request: pytest.FixtureRequest) -> AsyncIterator[HangingServer]:
    server = HangingServer(hang_at=request.param)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _school(tmp_path: Path, port: int) -> Context:
    ctx = write_school(tmp_path, replace={"port = 25\n": f"port = {port}\ntimeout_s = {TIMEOUT_S}\n"})
    ctx.ensure_data_dir()
    return ctx


async def _cli(ctx: Context, *argv: str) -> int:
    return await asyncio.to_thread(main, [*argv, "--config", str(ctx.config_path), "--data", str(ctx.data_dir)])


def _outbox(ctx: Context) -> list[tuple[object, ...]]:
    db = sqlite3.connect(ctx.db_path)
    try:
        return db.execute("SELECT status, attempts, sent_at, attempted_at IS NOT NULL, last_error, message_id "
                          "FROM alert_outbox ORDER BY id").fetchall()
    finally:
        db.close()


async def test_a_hanging_server_is_given_up_on_in_time_and_the_alert_is_kept(
        tmp_path: Path, hanging: HangingServer, clock: Clock, capsys: pytest.CaptureFixture[str]) -> None:
    ctx = _school(tmp_path, hanging.port)
    assert ctx.settings.smtp.timeout_s == TIMEOUT_S
    svc = service(ctx.settings, ctx.db_path, clock)
    await svc.open()
    try:
        svc.submit(evaluation(), ADULT)
        started = time.monotonic()
        result = await asyncio.wait_for(svc.run_once(), 60)
        waited = time.monotonic() - started
        assert (result.sent, result.failed) == (0, 1)
        assert hanging.connections == 1
        # it waited for the server (the configured timeout), then gave up: not 30 s, not for ever
        assert TIMEOUT_S * 0.9 <= waited < TIMEOUT_S + 15, waited
        [(status, attempts, sent_at, begun, error, message_id)] = _outbox(ctx)
        assert (status, attempts, sent_at) == ("pending", 1, None)
        why = f"no answer from 127.0.0.1:{hanging.port} within {TIMEOUT_S} s (timed out)"
        assert error == why
        # only a hang after the message was handed over leaves "may already have it"
        assert begun == (hanging.hang_at == "data")
        assert hanging.messages_unanswered == (1 if hanging.hang_at == "data" else 0)

        assert await _cli(ctx, "alerts", "pending") == 0
        out = capsys.readouterr().out
        assert "1 alert email(s) waiting" in out and f"last error: {why}" in out
        assert ("a send was begun: the mail server may already have it" in out) == (hanging.hang_at == "data")

        await hanging.stop()                                   # a real server takes its place, same port
        smtp = SmtpServer(port=hanging.port)
        await smtp.start()
        try:
            clock.advance(seconds=5)
            assert (await svc.run_once()).sent == 1
            for _ in range(3):
                clock.advance(minutes=5)
                assert (await svc.run_once()).sent == 0
        finally:
            await smtp.stop()
    finally:
        await svc.stop()
    [got] = smtp.received
    assert got.subject == "[Schoolgate] IMMEDIATE: adult content - ks2" and got.message["Message-ID"] == message_id
    assert [r[0] for r in _outbox(ctx)] == ["sent"]


async def test_alerts_test_says_the_server_timed_out(tmp_path: Path, hanging: HangingServer,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    ctx = _school(tmp_path, hanging.port)
    started = time.monotonic()
    assert await asyncio.wait_for(_cli(ctx, "alerts", "test"), 60) == 1
    assert time.monotonic() - started < TIMEOUT_S + 15
    captured = capsys.readouterr()
    assert captured.err.strip() == (f"schoolgate: alerts test failed: no answer from 127.0.0.1:{hanging.port} "
                                    f"within {TIMEOUT_S} s (timed out)")
    assert "accepted" not in captured.out
