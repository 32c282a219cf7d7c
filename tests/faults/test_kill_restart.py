"""`schoolgate run` killed (SIGKILL) in the middle of a burst, then started again.

What "acknowledged" means here:

* an alert is acknowledged once its hit is committed (`alert_hits`, with its
  incident) and its email is in the outbox: a kill never loses it, and it is
  delivered after the restart, once;
* a visit is acknowledged once the visit writer has committed its batch,
  which happens at most `[storage] flush_interval_s` after the request (plus
  the few milliseconds of the write).  A SIGKILL loses at most the visits of
  that last interval, still in memory; nothing is counted for them, and the
  restarted service logs that the previous run did not stop cleanly and what
  that can mean.  A SIGTERM (or Ctrl-C) writes everything first.

Every request in the burst is blocked (gambling or flagged), so nothing
leaves 127.0.0.1.
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

import httpx

from proxy.status import collect, tcp_listening
from tests.alerts.smtpserver import SmtpServer
from tests.faults.helpers import free_port, init_school, meta, query, scalar, until, visit_paths
from tests.support.school import proxied_transport

REPO = Path(__file__).resolve().parents[2]
FLUSH_S = 0.2
SLACK_S = 1.5          # scheduling on a shared machine: the writer's pass plus the event loop's delays


async def _start(cfg: Path, data: Path, log: Path, port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "proxy.cli", "run", "--config", str(cfg), "--data", str(data), cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=asyncio.subprocess.DEVNULL, stderr=log.open("wb"))
    await until(lambda: tcp_listening("127.0.0.1", port, 0.2) is None or proc.returncode is not None,
                timeout=60, what="schoolgate run to listen")
    assert proc.returncode is None, log.read_text()
    return proc


def _client(proxy_url: str, ip: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=proxied_transport(proxy_url, ip, False), timeout=10,
                             headers={"Connection": "close"})


async def test_killed_mid_burst_then_restarted(tmp_path: Path) -> None:
    smtp_port, proxy_port, metrics_port = free_port(), free_port(), free_port()
    ctx = await init_school(tmp_path, replace={
        "port = 25": f"port = {smtp_port}",
        "listen_port = 8080": f"listen_port = {proxy_port}",
        'database = "schoolgate.db"': f'database = "schoolgate.db"\nflush_interval_s = {FLUSH_S}',
        "enabled = false                  # a Prometheus": f"port = {metrics_port}\nenabled = true  # a Prometheus",
        "port = 9810\n": "\n"})
    cfg, data, db = ctx.config_path, ctx.data_dir, ctx.db_path
    proxy_url = f"http://127.0.0.1:{proxy_port}"
    smtp = SmtpServer(port=smtp_port)                          # down during the first run
    first = await _start(cfg, data, tmp_path / "run1.log", proxy_port)
    clients = [_client(proxy_url, f"127.0.2.{n}") for n in range(50, 60)]
    try:
        async def laptop(n: int, c: httpx.AsyncClient) -> list[int]:
            codes = [(await c.get(f"http://bet365.com/ack/{n * 4 + i}")).status_code for i in range(4)]
            return codes + [(await c.get(f"http://pornhub.com/ack/flagged/{n}")).status_code]

        codes = await asyncio.gather(*(laptop(n, c) for n, c in enumerate(clients)))   # ten pupils' laptops:
        assert {code for each in codes for code in each} == {403}   # gambling (not flagged) and one flagged hit
        await until(lambda: db.exists() and scalar(db, "SELECT COUNT(*) FROM alert_outbox") == 10,
                    what="ten alerts in the outbox")
        await asyncio.sleep(FLUSH_S + SLACK_S)                 # every visit above is acknowledged now

        done: list[tuple[float, str]] = []                     # (when the response came, path)

        async def hammer(c: httpx.AsyncClient, n: int) -> None:
            for i in range(10_000):
                path = f"/burst/{n}/{i}"
                try:
                    await c.get(f"http://bet365.com{path}")
                except httpx.HTTPError:
                    return                                     # the proxy is gone
                done.append((time.monotonic(), path))

        burst = [asyncio.create_task(hammer(c, n)) for n, c in enumerate(clients)]
        await asyncio.sleep(SLACK_S + 0.5)
        killed_at = time.monotonic()
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
        await asyncio.gather(*burst)
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
        for c in clients:
            await c.aclose()

    paths = visit_paths(db)
    assert len(paths) == len(set(paths))                       # nothing written twice
    acknowledged = {f"/ack/{i}" for i in range(40)} | {f"/ack/flagged/{n}" for n in range(10)}
    assert {p for p in paths if p.startswith("/ack/")} == acknowledged     # every one written
    burst_written = {p for p in paths if p.startswith("/burst/")}
    answered = {p for _, p in done}
    assert burst_written <= answered                           # only what was asked, each once
    settled = {p for t, p in done if t < killed_at - FLUSH_S - SLACK_S}
    assert settled and settled <= burst_written                # acknowledged before the kill: written
    lost = len(answered) - len(burst_written)                  # the last flush interval: not counted
    assert meta(db, "visits_dropped") == 0
    outbox = query(db, "SELECT id, status, message_id FROM alert_outbox ORDER BY id")
    incidents = query(db, "SELECT id, ref, kind FROM incidents ORDER BY id")
    assert len(outbox) == 10 and {r[1] for r in outbox} == {"pending"} and len(incidents) == 10
    assert scalar(db, "SELECT COUNT(*) FROM alert_hits WHERE outbox_id IS NULL AND severity = 'immediate'") == 0
    hits = query(db, "SELECT id, severity, outbox_id FROM alert_hits ORDER BY id")   # digest hits wait for the hour

    await smtp.start()
    log2 = tmp_path / "run2.log"
    second = await _start(cfg, data, log2, proxy_port)
    try:
        await until(lambda: len(smtp.received) >= 10, timeout=40, what="the queued alerts after the restart")
        scrape = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        status = await asyncio.to_thread(collect, ctx)   # `schoolgate status` (its CLI: test_health.py)
        await asyncio.sleep(0.5)                               # a few more passes: nothing sent twice
        assert len(smtp.received) == 10
    finally:
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 20) == 0
        await smtp.stop()
    text = log2.read_text()
    assert "did not stop cleanly (killed or crashed)" in text
    assert sum(int(line.split(" alert email(s) sent")[0].rsplit(" ", 1)[1])
               for line in text.splitlines() if " alert email(s) sent" in line) == 10
    assert "visit writer stopped" in text
    assert sorted(r.message["Message-ID"] for r in smtp.received) == sorted(r[2] for r in outbox)
    assert query(db, "SELECT id, ref, kind FROM incidents ORDER BY id") == incidents
    assert query(db, "SELECT id, severity, outbox_id FROM alert_hits ORDER BY id")[:len(hits)] == hits
    assert {r[0] for r in query(db, "SELECT status FROM alert_outbox")} == {"sent"}
    assert meta(db, "unclean_stops") == 1 and not query(db, "SELECT key FROM meta WHERE key LIKE 'service_running:%'")
    assert "schoolgate_up 1" in scrape and 'schoolgate_alerts_pending' in scrape
    parts = {p.part: p for p in status.parts}
    assert parts["proxy"].level == "OK" and parts["store"].details["unclean_stops"] == 1
    assert parts["outbox"].details["pending"] == 0
    print(f"burst: {len(answered)} answered before the kill, {len(burst_written)} written, "
          f"{lost} lost in the last flush interval (flush_interval_s = {FLUSH_S})")
