"""Soak: `schoolgate run` (proxy + DNS resolver) under a steady load for a long while.

    python -m bench.soak [--minutes 30] [--rps 40] [--qps 100] [--sample 30] [--warmup 120]
                         [--tree PATH] [--tracemalloc] [--json]

Starts nginx (the origin: plain HTTP and TLS on loopback), a fake upstream DNS server
(dnsmasq answering every name with 192.0.2.1), a mail sink for the alert emails, and
`schoolgate run` with the full-scale category index (cached under /tmp/schoolgate-bench/,
see `bench.proxy`), the DNS resolver and the metrics endpoint on free loopback ports.
Clients on four loopback addresses (KS2, KS1, staff, visitor: `bench._soaksetup`) send
`--rps` HTTP requests a second through the proxy (allowed pages, blocked and flagged pages,
a flagged search, HTTPS tunnels; `bench._soakload`) and `--qps` DNS queries a second; every
allowed request goes to the local nginx, and the mix is checked against the policy before
the run so nothing can leave the machine.  Every `--sample` seconds: VmRSS (and RssAnon /
RssFile) of the service, its open descriptors and threads, its metrics (rows written, queue,
dropped), what the clients sent and got, p50/p99 latency of the window.  At the end the
service is stopped with SIGTERM and its database is compared with what was answered.

Goals (the issue): RSS at the end within 10 % of RSS after warm-up (minute 2), no descriptor
leak, no lost visit or DNS rows.  Descriptors are judged with no client connected: counted
before the load starts and again once the clients have closed everything at the end (a leak
stays; under load the count follows how many connections the clients hold, which grows after
a stall).  Their trend under load is printed too.  `--tracemalloc` runs the service under
tracemalloc (one frame: the allocating line) and prints the allocations that grew between
warm-up and the end (a debug mode for finding a leak, not for the figures: the service is
several times slower, so use about half the default rates).  The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench._dnspeers import free_udp_tcp_port, start_fake_upstream
from bench._peers import Peer, free_port, machine, tree_cpu_s
from bench._soakdebug import CHILD, growth, take_snapshot
from bench._soakload import Load, build_mix
from bench._soaksetup import MailSink, check_mix, grant_overrides, soak_config, start_origin
from bench._soakwatch import db_counts, metric_fields, process_sample, scrape, summary, table

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"rss_growth_pct": 10.0}
IDLE_SETTLE_S = 3.0       # after the load: time for the service to see the clients' closes
FDS_IDLE_SLACK = 5        # descriptors opened once and kept (upstream DNS sockets, the writer's files)
READY_LINE = "Press Ctrl-C to stop."


@dataclass(frozen=True)
class SoakOptions:
    minutes: float = 30.0
    rps: float = 40.0
    qps: float = 100.0
    sample_s: float = 30.0
    warmup_s: float = 120.0
    tracemalloc: bool = False


def sample_names(path: Path, n: int, seed: int = 7) -> list[str]:
    """`n` names from a one-name-per-line file, picked at random offsets (the file may be large)."""
    rng = random.Random(seed)
    size = path.stat().st_size
    names: set[str] = set()
    with open(path, "rb") as f:
        for _ in range(n * 4):
            f.seek(rng.randrange(size))
            f.readline()
            line = f.readline().strip().decode(errors="replace")
            if line and "." in line and "/" not in line:
                names.add(line)
            if len(names) >= n:
                break
    return sorted(names)


def service_command(config: Path, data: Path, snapshot: Path | None) -> list[str]:
    """`schoolgate run` from this checkout; under tracemalloc (SIGUSR1 dumps a snapshot) when asked."""
    tail = ["run", "--config", str(config), "--data", str(data)]
    if snapshot is None:
        return [sys.executable, "-m", "proxy.cli", *tail]
    return [sys.executable, "-X", "tracemalloc=1", "-c", CHILD, str(ROOT), str(snapshot), *tail]


async def wait_service(proc: subprocess.Popen[bytes], log: Path, metrics_port: int, timeout: float = 240) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"schoolgate run exited ({proc.returncode}): {log.read_text()[-1500:]}")
        if READY_LINE in log.read_text(errors="replace") and len(await asyncio.to_thread(scrape, metrics_port)):
            return time.perf_counter() - started
        await asyncio.sleep(0.2)
    raise RuntimeError(f"schoolgate run was not ready after {timeout:.0f} s")


def log_problems(log: Path) -> tuple[int, list[str]]:
    """ERROR/CRITICAL lines and tracebacks in the service's log: how many, and the first few distinct."""
    seen: list[str] = []
    count = 0
    for line in log.read_text(errors="replace").splitlines():
        if " ERROR " in line or " CRITICAL " in line or line.startswith("Traceback"):
            count += 1
            text = line.split(": ", 1)[-1][:200]
            if text not in seen and len(seen) < 5:
                seen.append(text)
    return count, seen


async def run_soak(opts: SoakOptions, *, template: Path, listed: Sequence[str], workdir: Path,
                   say: Callable[[str], None]) -> dict[str, Any]:
    """One soak in `workdir` (see the module docstring); the figures as one dict."""
    from bench.proxy import html_body

    os.chmod(workdir, 0o755)   # nginx's worker runs as an unprivileged user
    body = html_body()
    peers: list[Peer] = []
    sink = MailSink()
    proc: subprocess.Popen[bytes] | None = None
    try:
        origin, tls_port = start_origin(workdir / "nginx", body)
        peers.append(origin)
        upstream = start_fake_upstream(workdir)
        peers.append(upstream)
        smtp_port = await sink.start()
        proxy_port, metrics_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
        dns_port = free_udp_tcp_port()
        config = soak_config(workdir, proxy_port=proxy_port, dns_port=dns_port, upstream_port=upstream.port,
                             metrics_port=metrics_port, smtp_port=smtp_port)
        data = workdir / "var"
        shutil.copytree(template, data)
        await grant_overrides(config, data, int(opts.minutes) + 60)
        items = build_mix(origin.port, tls_port)
        await check_mix(config, data, items)
        before = db_counts(data / "schoolgate.db")
        log = workdir / "schoolgate.log"
        snapshot = workdir / "tracemalloc" if opts.tracemalloc else None
        with open(log, "wb") as out:
            proc = subprocess.Popen(service_command(config, data, snapshot), cwd=ROOT, stdout=out,
                                    stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        ready_s = await wait_service(proc, log, metrics_port)
        say(f"schoolgate run ready in {ready_s:.1f} s (pid {proc.pid}); load {opts.rps:g} req/s + "
            f"{opts.qps:g} DNS q/s for {opts.minutes:g} min")
        load = Load(proxy_port=proxy_port, dns_port=dns_port, items=items, listed=listed, rps=opts.rps,
                    qps=opts.qps, body_size=len(body))
        fds_idle_before = process_sample(proc.pid)["fds"]
        samples, debug = await _drive(opts, proc, load, metrics_port, snapshot, say)
        # The clients have closed every connection: what the service still holds is its own (a leak
        # would stay here), unlike the figures under load, which follow how many connections the
        # clients keep open (more after a stall, for one).
        await asyncio.sleep(IDLE_SETTLE_S)
        fds_idle_after = process_sample(proc.pid)["fds"]
        say(f"descriptors with no client connected: {fds_idle_before:g} before the load, {fds_idle_after:g} after")
        final = metric_fields(await asyncio.to_thread(scrape, metrics_port))
        proc.send_signal(signal.SIGTERM)
        stopped = time.perf_counter()
        exit_code = await asyncio.to_thread(proc.wait, 120)
        stop_s = time.perf_counter() - stopped
        after = db_counts(data / "schoolgate.db")
        errors, first_errors = log_problems(log)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        await sink.stop()
        for peer in reversed(peers):
            peer.stop()
    t = load.tally
    visit_rows, dns_rows = after["visits"] - before["visits"], after["dns"] - before["dns"]
    expected_dns = t.dns_answered - int(final.get("dns_ratelimited", 0))   # rate limited: counted, no row
    result: dict[str, Any] = {
        "minutes": opts.minutes, "ran_minutes": round(samples[-1]["t_s"] / 60, 2), "rps": opts.rps,
        "qps": opts.qps, "ready_s": round(ready_s, 2),
        "requests": t.http_sent, "requests_answered": t.http_answered, "requests_skipped": t.http_skipped,
        "requests_retried": t.http_retries,
        "http_errors": dict(t.http_errors), "bad_bodies": t.bad_body, "by_item": dict(sorted(t.by_item.items())),
        "dns_queries": t.dns_sent, "dns_answered": t.dns_answered, "dns_timeouts": t.dns_timeouts,
        "dns_ratelimited": final.get("dns_ratelimited", 0.0), "dns_skipped": t.dns_skipped,
        "dns_rcodes": {str(k): v for k, v in sorted(t.dns_rcodes.items())},
        **summary(samples, min(opts.warmup_s, opts.minutes * 60 / 5)),
        "visit_rows": visit_rows, "lost_visit_rows": max(0, t.http_answered - visit_rows),
        "visits_logged_by_service": final.get("logged", 0.0), "dns_rows": dns_rows,
        "lost_dns_rows": max(0, expected_dns - dns_rows), "visits_dropped_meta": after["visits_dropped"],
        "dns_dropped_meta": after["dns_dropped"], "writer_dropped": final.get("dropped", 0.0),
        "alert_emails_received": sink.messages, "alert_outbox_sent": after["alert_emails_sent"],
        "alert_subjects": dict(sink.subjects),
        "service_exit_code": exit_code, "service_stop_s": round(stop_s, 2), "service_log_errors": errors,
        "service_log_first_errors": first_errors, "fds_idle_before": fds_idle_before,
        "fds_idle_after": fds_idle_after, "samples": samples, **debug,
    }
    result["goals_met"] = {
        "rss": result.get("rss_growth_pct", 100.0) < GOALS["rss_growth_pct"],
        "fds": fds_idle_after <= fds_idle_before + FDS_IDLE_SLACK,
        "visit_rows": result["lost_visit_rows"] == 0 and after["visits_dropped"] == before["visits_dropped"],
        "dns_rows": result["lost_dns_rows"] == 0 and after["dns_dropped"] == before["dns_dropped"],
        "clean_stop": exit_code == 0,
    }
    return result


async def _drive(opts: SoakOptions, proc: subprocess.Popen[bytes], load: Load, metrics_port: int,
                 snapshot: Path | None, say: Callable[[str], None]) -> tuple[list[dict[str, float]], dict[str, object]]:
    """Run the load for `opts.minutes`, sampling every `opts.sample_s`; tracemalloc snapshots if asked.

    SIGINT or SIGTERM ends the load early (the service is still stopped and counted)."""
    stop, end_early = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(load.run(stop), name="soak-load")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, end_early.set)
    cpu0 = tree_cpu_s(proc.pid)
    start, duration = loop.time(), opts.minutes * 60
    warmup = min(opts.warmup_s, duration / 5)
    samples: list[dict[str, float]] = []
    debug: dict[str, object] = {}
    snapped = False
    n = 0
    try:
        while True:
            t = loop.time() - start
            if proc.poll() is not None:
                raise RuntimeError(f"schoolgate run ended during the soak ({proc.returncode})")
            tally = load.tally
            sample: dict[str, float] = {"t_s": round(t), **process_sample(proc.pid),
                                        **metric_fields(await asyncio.to_thread(scrape, metrics_port)),
                                        **load.take_window(), "http_sent": tally.http_sent,
                                        "http_answered": tally.http_answered, "dns_sent": tally.dns_sent,
                                        "dns_answered": tally.dns_answered, "load1": round(os.getloadavg()[0], 2),
                                        "cpu_s": round(tree_cpu_s(proc.pid) - cpu0, 2),
                                        "errors": sum(tally.http_errors.values()) + tally.dns_timeouts}
            samples.append(sample)
            say(" ".join(f"{k}={v:g}" for k, v in sample.items()))
            if snapshot is not None and not snapped and t >= warmup:
                await take_snapshot(proc.pid, snapshot, 1)
                snapped = True
            if t >= duration or end_early.is_set():
                break
            n += 1
            next_at = start + min(n * opts.sample_s, duration)
            try:
                await asyncio.wait_for(end_early.wait(), max(0.0, next_at - loop.time()))
                say("ending early (signal)")
            except TimeoutError:
                pass
    finally:
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=120)
        if not done:   # never lose the run's figures for a client that would not stop
            task.cancel()
            await asyncio.wait({task}, timeout=30)
            debug["load_cancelled"] = True
        elif not task.cancelled() and task.exception() is not None:
            debug["load_error"] = repr(task.exception())
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    if snapshot is not None and snapped:   # after the load: what the service still holds
        await asyncio.sleep(2)
        await take_snapshot(proc.pid, snapshot, 2)
        top = await asyncio.to_thread(growth, snapshot, 1, 2)
        debug["tracemalloc_top"] = top
        say("grew most between the warm-up snapshot and the end (tracemalloc, by allocating line):\n  "
            + "\n  ".join(top))
    return samples, debug


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--rps", type=float, default=40.0, help="HTTP requests per second through the proxy")
    ap.add_argument("--qps", type=float, default=100.0, help="DNS queries per second")
    ap.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=120.0, help="RSS growth is measured from this sample on")
    ap.add_argument("--tree", type=Path, help="UT1-layout tarball (default: full scale, generated and cached)")
    ap.add_argument("--tracemalloc", action="store_true", help="debug mode: what grew between warm-up and the end")
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    args = ap.parse_args()
    from bench.categories import full_tree
    from bench.proxy import data_template, domains_file

    def say(text: str) -> None:
        if not args.json:
            print(text, flush=True)

    tree = args.tree or full_tree()
    template = data_template(tree, say)
    listed = sample_names(domains_file(tree), 2_000)
    opts = SoakOptions(args.minutes, args.rps, args.qps, args.sample, args.warmup, args.tracemalloc)
    with tempfile.TemporaryDirectory(prefix="sg-bench-soak-") as tmp:
        result = asyncio.run(run_soak(opts, template=template, listed=listed, workdir=Path(tmp), say=say))
    result.update({"tree": str(tree), "machine": machine(), "options": asdict(opts)})
    samples = result.pop("samples")
    assert isinstance(samples, list)
    say(table(samples))
    say(json.dumps(result, indent=1))
    result["samples"] = samples
    print(json.dumps(result))


if __name__ == "__main__":
    main()
