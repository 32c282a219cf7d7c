"""Health: `schoolgate status` (every part OK/WARN/FAIL, exit code, --json) and the Prometheus endpoint."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import socket
import sqlite3
from pathlib import Path

import httpx
import pytest

from categories.updater import state_path
from proxy.cli import main
from proxy.cmd_dns import start_dns
from proxy.db import utc_iso
from proxy.status import collect, format_text
from reports import runs
from reports.schedule import due_week
from tests.faults.helpers import burst, free_port, start_school, until

METRICS_ON_KEY = "enabled = false                  # a Prometheus"
METRICS_ON = {METRICS_ON_KEY: "enabled = true                   # a Prometheus", "port = 9810\n": "port = 0\n"}
SAMPLE = re.compile(r'^([a-z_:][a-z0-9_:]*)(\{(?:[a-z_]+="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+]+|NaN|\+Inf|-Inf)$')


def parse_exposition(text: str) -> dict[str, float]:
    """Text format 0.0.4 -> {"name{labels}": value}; every line must be a comment or a valid sample."""
    assert text.endswith("\n")
    samples: dict[str, float] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line[7:].split(" ")
            assert kind in ("counter", "gauge"), line
            typed.add(name)
            continue
        if line.startswith("# HELP "):
            continue
        m = SAMPLE.match(line)
        assert m is not None, f"not a sample line: {line!r}"
        assert m.group(1) in typed, f"sample before its TYPE: {line!r}"
        samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return samples


def _dns_query(address: tuple[str, int]) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(bytes.fromhex("abcd01000001000000000000") + b"\x06bet365\x03com\x00\x00\x01\x00\x01", address)
        return s.recvfrom(512)[0][:2]


async def test_metrics_endpoint(tmp_path: Path) -> None:
    port = free_port()                                # the SMTP server is down: the alert stays pending
    school = await start_school(tmp_path, replace={**METRICS_ON, "port = 25": f"port = {port}",
                                                   "enabled = false\nlisten_host": "enabled = true\nlisten_host",
                                                   'upstreams = ["127.0.0.53"]': f'upstreams = ["127.0.0.1:{port}"]'})
    rt = school.runtime
    dns = await start_dns(rt, listen_port=0)
    rt.dns_counts = dns.resolver.counts
    try:
        assert rt.metrics is not None
        host, mport = rt.metrics.address
        assert host == "127.0.0.1"
        url = f"http://127.0.0.1:{mport}/metrics"
        pupil = school.client("127.0.2.60")
        codes = await burst(pupil, ["http://example.com/1", "http://example.com/2", "http://example.com/3",
                                    "http://bet365.com/", "http://pornhub.com/"])
        assert codes == [200, 200, 200, 403, 403]
        await rt.writer.flush()
        await until(lambda: rt.alerts.stored == 1 and rt.alerts.sender.server_failures >= 1, what="the alert")
        assert await asyncio.to_thread(_dns_query, dns.address) == b"\xab\xcd"   # one query (a blocked name)
        await rt.writer.flush()
        async with httpx.AsyncClient(timeout=5) as http:
            r = await http.get(url)
            assert (await http.get(f"http://127.0.0.1:{mport}/other")).status_code == 404
            assert (await http.post(url)).status_code == 405
    finally:
        await dns.stop()
        await school.close()
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    m = parse_exposition(r.text)
    assert m['schoolgate_requests_total{action="allow"}'] == 3
    assert m['schoolgate_requests_total{action="block"}'] == 2 == m["schoolgate_blocks_total"]
    assert m["schoolgate_flagged_total"] == 1
    assert m["schoolgate_alerts_pending"] == 1 and m["schoolgate_alert_hits_waiting"] == 0
    assert m["schoolgate_visit_queue_depth"] == 0 and m["schoolgate_visits_written_total"] >= 5
    assert m['schoolgate_visits_dropped_total{reason="queue_full"}'] == 0
    assert m['schoolgate_visits_dropped_total{reason="write_failed"}'] == 0
    assert m["schoolgate_engine_failures_total"] == 0
    assert m["schoolgate_category_list_age_seconds"] >= 0
    assert m["schoolgate_dns_requests_total"] == 1 and m['schoolgate_dns_queries_total{result="blocked"}'] == 1
    assert m["schoolgate_up"] == 1
    with pytest.raises(httpx.ConnectError):                   # stopped with the runtime
        httpx.get(url, timeout=2)


async def test_metrics_port_taken_does_not_stop_filtering(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        school = await start_school(tmp_path, replace={METRICS_ON_KEY: METRICS_ON[METRICS_ON_KEY],
                                                       "port = 9810\n": f"port = {port}\n"})
        try:
            assert school.runtime.metrics is None
            assert (await burst(school.client("127.0.2.61"), ["http://bet365.com/"])) == [403]
        finally:
            await school.close()
    assert f"metrics endpoint not started on 127.0.0.1:{port}" in caplog.text


def _run_status(ctx_args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, dict[str, object]]]:
    capsys.readouterr()                               # what came before (e.g. the init's report)
    code = main(["status", "--json", *ctx_args])
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] == (code == 0)
    return code, {p["part"]: p for p in out["parts"]}


async def test_status_all_ok_then_every_part_failing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    proxy_port = free_port()
    school = await start_school(tmp_path, listen_port=None, replace={"listen_port = 8080": f"listen_port = {proxy_port}"})
    ctx = school.ctx
    args = ["--config", str(ctx.config_path), "--data", str(ctx.data_dir)]
    try:
        await burst(school.client("127.0.2.62"), ["http://example.com/", "http://bet365.com/"])
        await school.runtime.writer.flush()
        code, parts = _run_status(args, capsys)
        assert code == 0, parts
        assert [p for p in parts] == ["proxy", "dns", "store", "outbox", "categories", "reports"]
        assert {p["level"] for p in parts.values()} == {"OK"}
        assert str(proxy_port) in str(parts["proxy"]["summary"])
        store = parts["store"]["details"]
        assert isinstance(store, dict) and store["schema_version"] >= 1 and store["visits_dropped"] == 0
        on_the_day = collect(ctx, school.clock())      # the visits were made at the school's (injected) time
        assert [p.details["visits_today"] for p in on_the_day.parts if p.part == "store"] == [2]
        capsys.readouterr()
        assert main(["status", *args]) == 0
        text = capsys.readouterr().out
        assert len(text.splitlines()) == 6 and all(line.startswith("OK ") for line in text.splitlines())
    finally:
        await school.close()

    # now everything goes wrong at once
    now = dt.datetime.now(dt.UTC)
    db = sqlite3.connect(ctx.db_path, isolation_level=None)
    db.execute("UPDATE meta SET value = 7 WHERE key = 'visits_dropped'")
    db.execute("INSERT INTO alert_outbox (created_at, kind, subject, body_text, status, attempts, last_error) "
               "VALUES (?, 'alert', 's', 'b', 'pending', 12, 'connection refused by 127.0.0.1:25')",
               (utc_iso(now - dt.timedelta(hours=3)),))
    week = due_week(now, ctx.settings)
    runs.record_manual(db, week.label, "failed", now, error="SMTP down")
    db.close()
    state = state_path(ctx.index_path)
    state.write_text(json.dumps({"_last_update": {"at": utc_iso(now), "ok": False,
                                                  "reason": "ut1: cannot download: ReadTimeout"}}))
    dns_on = tmp_path / "config" / "dns-on.toml"
    dns_on.write_text(ctx.config_path.read_text().replace(
        "enabled = false\nlisten_host", "enabled = true\nlisten_host").replace(
        "listen_port = 5353", f"listen_port = {free_port()}"))
    code, parts = _run_status(["--config", str(dns_on), "--data", str(ctx.data_dir)], capsys)
    assert code == 1
    levels = {name: p["level"] for name, p in parts.items()}
    assert levels == {"proxy": "FAIL", "dns": "FAIL", "store": "WARN", "outbox": "FAIL", "categories": "WARN",
                      "reports": "WARN"}
    assert "nothing listening" in str(parts["proxy"]["summary"])
    assert "7 visits not logged" in str(parts["store"]["summary"])
    assert "1 alert email(s) pending" in str(parts["outbox"]["summary"]) and "3.0 h" in str(parts["outbox"]["summary"])
    assert "connection refused" in str(parts["outbox"]["summary"])
    assert "last update FAILED" in str(parts["categories"]["summary"]) and "ReadTimeout" in str(
        parts["categories"]["summary"])
    assert f"{week.label}: failed" in str(parts["reports"]["summary"]) and "SMTP down" in str(
        parts["reports"]["summary"])
    assert parts["store"]["details"]["unclean_stops"] == 0  # type: ignore[index]


def test_status_without_a_data_dir(tmp_path: Path) -> None:
    from tests.support.school import write_school

    ctx = write_school(tmp_path)
    status = collect(ctx)
    assert not status.ok
    levels = {p.part: p.level for p in status.parts}
    assert levels["store"] == "FAIL" and levels["categories"] == "FAIL" and levels["outbox"] == "FAIL"
    assert "run `schoolgate init`" in format_text(status)
