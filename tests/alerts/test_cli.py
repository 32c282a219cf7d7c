"""`schoolgate alerts test` says what failed; `schoolgate alerts pending` says what waits and why."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from proxy.cli import main
from proxy.context import Context
from tests.alerts.helpers import Clock, evaluation, service
from tests.alerts.smtpserver import SmtpServer, self_signed
from tests.support.school import write_school


def _school(tmp_path: Path, port: int, security: str = "none", username: str = "") -> Context:
    return write_school(tmp_path, replace={
        "port = 25\n": f"port = {port}\ntimeout_s = 5\n",
        'security = "none"': f'security = "{security}"',
        'username = ""': f'username = "{username}"'})


async def _cli(ctx: Context, *argv: str) -> int:
    return await asyncio.to_thread(main, [*argv, "--config", str(ctx.config_path), "--data", str(ctx.data_dir)])


async def test_alerts_test_sends_to_the_recipients(tmp_path: Path, smtp: SmtpServer,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert await _cli(_school(tmp_path, smtp.port), "alerts", "test") == 0
    [got] = await smtp.wait_for(1)
    assert sorted(got.recipients) == ["esafety@demo-primary.example", "head@demo-primary.example"]
    assert got.subject == "[Schoolgate] Test email: alerts reach you" and "Demo Primary School" in got.text
    assert "test email accepted by 127.0.0.1:" in capsys.readouterr().out


async def test_alerts_test_connection_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = SmtpServer()
    await server.start()
    port = server.port
    await server.stop()
    assert await _cli(_school(tmp_path, port), "alerts", "test") == 1
    err = capsys.readouterr().err
    assert f"alerts test failed: connection refused by 127.0.0.1:{port}" in err


async def test_alerts_test_tls_failure(tmp_path: Path, smtp: SmtpServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert await _cli(_school(tmp_path, smtp.port, security="tls"), "alerts", "test") == 1   # a plain server
    assert "alerts test failed: TLS failed with 127.0.0.1:" in capsys.readouterr().err


async def test_alerts_test_untrusted_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = SmtpServer(tls="starttls", cert=self_signed(tmp_path))
    await server.start()
    try:
        assert await _cli(_school(tmp_path, server.port, security="starttls"), "alerts", "test") == 1
    finally:
        await server.stop()
    err = capsys.readouterr().err
    assert "TLS failed" in err and "certificate is not trusted" in err


async def test_alerts_test_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    server = SmtpServer(login=("schoolgate", "right"))
    await server.start()
    ctx = _school(tmp_path, server.port, username="schoolgate")
    try:
        monkeypatch.delenv("SCHOOLGATE_SMTP_PASSWORD", raising=False)
        assert await _cli(ctx, "alerts", "test") == 1
        assert "no SMTP password: set the environment variable SCHOOLGATE_SMTP_PASSWORD" in capsys.readouterr().err
        monkeypatch.setenv("SCHOOLGATE_SMTP_PASSWORD", "wrong")
        assert await _cli(ctx, "alerts", "test") == 1
        assert "login refused for user 'schoolgate'" in capsys.readouterr().err
        monkeypatch.setenv("SCHOOLGATE_SMTP_PASSWORD", "right")
        assert await _cli(ctx, "alerts", "test") == 0
    finally:
        await server.stop()
    assert len(server.received) == 1


async def test_alerts_test_recipient_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = SmtpServer(refuse={"esafety@demo-primary.example", "head@demo-primary.example"})
    await server.start()
    try:
        assert await _cli(_school(tmp_path, server.port), "alerts", "test") == 1
        assert "recipient refused by 127.0.0.1:" in capsys.readouterr().err
        server.refuse = {"head@demo-primary.example"}
        assert await _cli(_school(tmp_path, server.port), "alerts", "test") == 1
        captured = capsys.readouterr()
        assert "accepted by" in captured.out and "recipient refused: head@demo-primary.example (550" in captured.err
    finally:
        await server.stop()


async def test_alerts_pending_lists_attempts_error_and_next_try(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    server = SmtpServer()
    await server.start()
    port = server.port
    await server.stop()
    ctx = _school(tmp_path, port)
    ctx.ensure_data_dir()
    assert await _cli(ctx, "alerts", "pending") == 0
    assert "no alert emails waiting" in capsys.readouterr().out
    svc = service(ctx.settings, ctx.db_path, Clock())
    await svc.open()
    svc.submit(evaluation(), "http://pornhub.com/")
    await svc.stop()                      # one failed attempt at stop: the server is down
    assert await _cli(ctx, "alerts", "pending") == 0
    out = capsys.readouterr().out
    for expected in ("1 alert email(s) waiting", "#1  alert", "immediate", "queued Monday 23 November 2026, 10:04",
                     "attempts 1", "next try", "[Schoolgate] IMMEDIATE: adult content - ks2",
                     f"last error: connection refused by 127.0.0.1:{port}"):
        assert expected in out, expected
