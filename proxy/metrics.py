"""A Prometheus endpoint on loopback: `GET /metrics` in the text exposition format 0.0.4.

The hot path only bumps plain integers: `Counters.visit()` is called by the
VisitLog addon once per logged request (one event loop, no locks), and the
rest is read at scrape time from what the parts already count (the visit
writer's `stats`, `Engine.failures`, the DNS resolver's `counts`, the alert
service's waiting hits) plus one small query of the outbox.

`MetricsServer` is a minimal asyncio HTTP/1.0-style server (one request per
connection, no new dependency) that the runtime starts and stops when
`[metrics] enabled = true`.  It listens on the configured loopback address
(default 127.0.0.1:9810; port 0 picks a free one, see `address`).
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from proxy.db import parse_iso

if TYPE_CHECKING:
    from proxy.runtime import Runtime

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MAX_REQUEST = 8192
READ_TIMEOUT_S = 5.0

Sample = tuple[dict[str, str], float]


class Counters:
    """Requests counted as they are logged; plain integers, bumped on the event loop's thread."""

    __slots__ = ("allowed", "blocked", "flagged")

    def __init__(self) -> None:
        self.allowed = 0
        self.blocked = 0
        self.flagged = 0

    def visit(self, blocked: bool, flagged: bool) -> None:
        if blocked:
            self.blocked += 1
        else:
            self.allowed += 1
        if flagged:
            self.flagged += 1


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return repr(float(value))


class Exposition:
    """Lines of the text format: `# HELP`, `# TYPE`, then `name{labels} value` per sample."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
            self.lines.append(f"{name}{{{text}}} {_number(value)}" if text else f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _list_age_s(runtime: Runtime, now: dt.datetime) -> float | None:
    index = runtime.engine.index
    if index is None:
        return None
    try:
        built = parse_iso(index.current.meta.get("built_at"))
    except Exception:  # noqa: BLE001 - a scrape must not fail for a broken index
        return None
    return None if built is None else max(0.0, (now - built).total_seconds())


async def _alerts_pending(runtime: Runtime) -> int | None:
    try:
        async with runtime.db.execute("SELECT COUNT(*) FROM alert_outbox WHERE status = 'pending'") as cur:
            row = await cur.fetchone()
    except Exception as exc:  # noqa: BLE001 - e.g. the database is locked: say so by leaving it out
        logger.warning("metrics: could not count pending alerts: %s", exc)
        return None
    return int(row[0]) if row else 0


async def render(runtime: Runtime) -> str:
    """The metrics of a running Schoolgate, in the text exposition format."""
    out = Exposition()
    c = runtime.counters
    now = runtime.clock()
    out.add("schoolgate_up", "gauge", "1 while the service runs.", [({}, 1)])
    out.add("schoolgate_start_time_seconds", "gauge", "When the service started (unix time).",
            [({}, round(runtime.started_at.timestamp()))])
    out.add("schoolgate_requests_total", "counter", "Requests decided and logged, by action.",
            [({"action": "allow"}, c.allowed), ({"action": "block"}, c.blocked)])
    out.add("schoolgate_blocks_total", "counter", "Requests blocked.", [({}, c.blocked)])
    out.add("schoolgate_flagged_total", "counter", "Requests in a flagged category (alerts).", [({}, c.flagged)])
    out.add("schoolgate_engine_failures_total", "counter",
            "Requests no decision could be made for (the group's fail_closed decided).",
            [({}, runtime.engine.failures)])
    w = runtime.writer.stats
    out.add("schoolgate_visit_queue_depth", "gauge", "Rows waiting in the visit writer's queue.",
            [({}, w.queue_depth)])
    out.add("schoolgate_visits_written_total", "counter", "Visit and DNS query rows written.", [({}, w.written)])
    out.add("schoolgate_visits_dropped_total", "counter",
            "Visit and DNS query rows not logged (counted in meta visits_dropped / dns_queries_dropped).",
            [({"reason": "queue_full"}, w.dropped_queue_full), ({"reason": "write_failed"}, w.dropped_failed)])
    out.add("schoolgate_visit_batches_failed_total", "counter", "Batches the visit writer gave up on.",
            [({}, w.failed_batches)])
    pending = await _alerts_pending(runtime)
    if pending is not None:
        out.add("schoolgate_alerts_pending", "gauge", "Alert emails in the outbox not yet sent.", [({}, pending)])
    out.add("schoolgate_alert_hits_waiting", "gauge", "Flagged hits not yet stored (written within a second).",
            [({}, max(0, runtime.alerts.submitted - runtime.alerts.stored))])
    age = _list_age_s(runtime, now)
    if age is not None:
        out.add("schoolgate_category_list_age_seconds", "gauge", "Age of the category index in use.",
                [({}, round(age))])
    dns = runtime.dns_counts
    if dns is not None:
        out.add("schoolgate_dns_queries_total", "counter", "DNS queries answered by the resolver, by outcome.",
                [({"result": key}, value) for key, value in sorted(dns.items()) if key != "queries"])
        out.add("schoolgate_dns_requests_total", "counter", "DNS queries received.", [({}, dns.get("queries", 0))])
    return out.text()


class MetricsServer:
    """`GET /metrics` on a loopback address; see the module docstring."""

    def __init__(self, runtime: Runtime, host: str = "127.0.0.1", port: int = 9810) -> None:
        self.runtime = runtime
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self.scrapes = 0

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the metrics server is not started")
        host, port = self._server.sockets[0].getsockname()[:2]
        return host, port

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=MAX_REQUEST)
        host, port = self.address
        logger.info("metrics endpoint listening on http://%s:%d/metrics", host, port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            status, body, ctype = await self._answer(head)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
            status, body, ctype = "400 Bad Request", b"bad request\n", "text/plain"
        try:
            writer.write(f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                         "Connection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _answer(self, head: bytes) -> tuple[str, bytes, str]:
        parts = head.split(b"\r\n", 1)[0].split()
        if len(parts) != 3:
            return "400 Bad Request", b"bad request\n", "text/plain"
        method, target = parts[0], parts[1].split(b"?", 1)[0]
        if target not in (b"/metrics", b"/"):
            return "404 Not Found", b"not found: try /metrics\n", "text/plain"
        if method != b"GET":
            return "405 Method Not Allowed", b"GET only\n", "text/plain"
        self.scrapes += 1
        try:
            text = await render(self.runtime)
        except Exception:  # noqa: BLE001 - never take the service down for a scrape
            logger.exception("metrics: could not render")
            return "500 Internal Server Error", b"could not render the metrics\n", "text/plain"
        return "200 OK", text.encode(), CONTENT_TYPE
