"""What `bench.soak` watches: memory and file descriptors of the service, its metrics, its database.

A sample is one flat dict: seconds since the load started, VmRSS of the process tree and the
main process's RssAnon / RssFile (the category index is memory-mapped: its pages count in RSS
as file pages, which the kernel can drop; a leak grows RssAnon), open descriptors, threads,
what the metrics endpoint says (rows written, dropped, queue depth, DNS counts), what the
clients saw, and the window's latency percentiles.
"""
from __future__ import annotations

import http.client
import logging
import re
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from bench._peers import descendants

logger = logging.getLogger(__name__)

_METRIC = re.compile(r"^(schoolgate_[a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$")


def _status_kb(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def process_sample(pid: int) -> dict[str, float]:
    """Memory (MB), open descriptors and threads of `pid` and its descendants."""
    rss_kb, fds, threads = 0, 0, 0
    for each in [pid, *descendants(pid)]:
        try:
            rss_kb += _status_kb(each, "VmRSS")
            threads += _status_kb(each, "Threads")
            fds += sum(1 for _ in Path(f"/proc/{each}/fd").iterdir())
        except OSError:   # a child that just ended
            continue
    return {"rss_mb": round(rss_kb / 1024, 1), "rss_anon_mb": round(_status_kb(pid, "RssAnon") / 1024, 1),
            "rss_file_mb": round(_status_kb(pid, "RssFile") / 1024, 1), "fds": fds, "threads": threads}


def scrape(port: int, timeout: float = 5.0) -> dict[str, float]:
    """The `schoolgate_*` samples of the metrics endpoint, keyed `name{labels}`; {} when it does not answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        text = resp.read().decode()
    except OSError as exc:
        logger.warning("metrics endpoint did not answer: %s", exc)
        return {}
    finally:
        conn.close()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _METRIC.match(line)
        if m:
            out[m[1] + (m[2] or "")] = float(m[3])
    return out


def metric_fields(m: dict[str, float]) -> dict[str, float]:
    """The metrics a soak follows, under short names."""
    def get(key: str) -> float:
        return m.get(key, 0.0)

    return {
        "logged": get('schoolgate_requests_total{action="allow"}') + get('schoolgate_requests_total{action="block"}'),
        "written": get("schoolgate_visits_written_total"),
        "dropped": get('schoolgate_visits_dropped_total{reason="queue_full"}')
        + get('schoolgate_visits_dropped_total{reason="write_failed"}'),
        "queue": get("schoolgate_visit_queue_depth"),
        "dns_requests": get("schoolgate_dns_requests_total"),
        "dns_ratelimited": get('schoolgate_dns_queries_total{result="ratelimited"}'),
        "dns_malformed": get('schoolgate_dns_queries_total{result="malformed"}'),
        "alerts_pending": get("schoolgate_alerts_pending"),
    }


def db_counts(db: Path) -> dict[str, int]:
    """Visit rows, DNS query rows and the writer's dropped counters (`meta`) of a stopped service."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        visits = conn.execute("SELECT COUNT(*) FROM visits").fetchone()[0]
        dns = conn.execute("SELECT COUNT(*) FROM dns_queries").fetchone()[0]
        meta = dict(conn.execute("SELECT key, value FROM meta WHERE key IN "
                                 "('visits_dropped', 'dns_queries_dropped')").fetchall())
        sent = conn.execute("SELECT COUNT(*) FROM alert_outbox WHERE status = 'sent'").fetchone()[0]
    finally:
        conn.close()
    return {"visits": int(visits), "dns": int(dns), "visits_dropped": int(meta.get("visits_dropped", 0)),
            "dns_dropped": int(meta.get("dns_queries_dropped", 0)), "alert_emails_sent": int(sent)}


def slope_per_hour(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, value) points, per hour (0 for fewer than two points)."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    if sxx == 0:
        return 0.0
    return sum((p[0] - mx) * (p[1] - my) for p in points) / sxx * 3600


def summary(samples: Sequence[dict[str, float]], warmup_s: float) -> dict[str, float]:
    """RSS and descriptors after warm-up vs at the end, and their trend after warm-up (`fds_first`:
    the first sample under load, when the clients have opened fewer connections)."""
    loaded = [s for s in samples if s["t_s"] > 0]
    after = [s for s in loaded if s["t_s"] >= warmup_s] or loaded[-1:]
    if not after:
        return {}
    first, last = after[0], after[-1]

    def growth(key: str) -> float:
        return round((last[key] - first[key]) / first[key] * 100, 2) if first[key] else 0.0

    return {
        "rss_start_t_s": first["t_s"], "rss_start_mb": first["rss_mb"], "rss_end_mb": last["rss_mb"],
        "rss_growth_pct": growth("rss_mb"), "rss_anon_start_mb": first["rss_anon_mb"],
        "rss_anon_end_mb": last["rss_anon_mb"], "rss_anon_growth_pct": growth("rss_anon_mb"),
        "rss_peak_mb": max(s["rss_mb"] for s in samples),
        "rss_anon_slope_mb_per_h": round(slope_per_hour([(s["t_s"], s["rss_anon_mb"]) for s in after]), 2),
        "fds_first": loaded[0]["fds"], "fds_start": first["fds"], "fds_end": last["fds"],
        "fds_max": max(s["fds"] for s in loaded),
        "fds_slope_per_h": round(slope_per_hour([(s["t_s"], s["fds"]) for s in after]), 2),
        "threads_start": loaded[0]["threads"], "threads_end": last["threads"],
    }


COLUMNS = [("t_s", "t (s)"), ("rss_mb", "RSS MB"), ("rss_anon_mb", "anon MB"), ("rss_file_mb", "file MB"),
           ("fds", "fds"), ("threads", "thr"), ("http_n", "HTTP"), ("http_p50_ms", "p50 ms"),
           ("http_p99_ms", "p99 ms"), ("dns_n", "DNS"), ("dns_p50_ms", "p50 ms"), ("dns_p99_ms", "p99 ms"),
           ("errors", "errors"), ("written", "rows written"), ("queue", "queue"), ("dropped", "dropped"),
           ("cpu_s", "CPU s"), ("load1", "load")]


def table(samples: Sequence[dict[str, float]]) -> str:
    """The samples as a Markdown table."""
    head = "| " + " | ".join(title for _, title in COLUMNS) + " |"
    rule = "|" + "|".join("---:" for _ in COLUMNS) + "|"
    rows = ["| " + " | ".join(f"{s.get(key, 0):g}" for key, _ in COLUMNS) + " |" for s in samples]
    return "\n".join([head, rule, *rows])
