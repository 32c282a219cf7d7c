"""Benchmark of the filtering proxy beside bare mitmdump and e2guardian, all in front of one nginx.

    python -m bench.proxy [--tree PATH] [--json] [--rounds N] [--duration S] [--no-e2guardian]

One run on loopback (PEERS.md, "HTTP filtering"): nginx serves a 1,230-byte HTML
file; `wrk -t2 -c50 -d10s --latency -s proxy.lua` sends the absolute-form target
to it through each proxy in turn (and once straight at nginx):
- bare mitmdump from the venv (`mitmdump -q`), the cost floor of any mitmproxy addon;
- Schoolgate: `schoolgate run` as a subprocess with the demo school's config (loopback
  is a KS2 school laptop), a data dir under /tmp whose category index is the
  full-scale tree compiled by `schoolgate categories update --from TREE`, and every
  addon.  KS2 blocks bare-IP URLs, so a teacher's override (`schoolgate override add
  --group ks2 --domain 127.0.0.1`) lets the requests through to nginx; the visit rows
  written are counted afterwards from its database;
- e2guardian 5.3 with the same names in its banned site list.
Each figure is requests/s, p50/p99 latency, VmRSS of the process tree after the
load, and the CPU time the process tree spent per request (user + system, from
/proc): on a shared machine that last one moves far less than requests/s does.
With 50 connections kept busy, latency is mostly queueing (p50 ~ 50 / requests/s),
so each target is also loaded through one connection for 5 s (`c1_*`): the
latency a request pays with no queue in front of it.
With --rounds N the proxies are loaded in turn N times; the medians are kept.
The compiled data dir and the name list are cached under /tmp/schoolgate-bench/.
The last line printed is one JSON object (with --json: only that line).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench._peers import (Peer, free_port, http_get_via, machine, start_e2guardian, start_mitmdump, start_nginx,
                          wait_ready)
from bench.categories import CACHE, full_tree, read_names

ROOT = Path(__file__).resolve().parents[1]
BODY_SIZE = 1230
GOALS = {"rps_ratio": 0.9, "p99_extra_ms": 5.0, "rss_extra_mb": 60.0}


def html_body(size: int = BODY_SIZE) -> bytes:
    head = b"<!doctype html>\n<html lang=en><meta charset=utf-8><title>Volcanoes</title>\n<body><h1>Volcanoes</h1>\n"
    tail = b"\n</body></html>\n"
    filler = (b"<p>A volcano is an opening in the crust of a planet through which lava, ash and gases escape. "
              b"Pupils in Year 4 learn how they form and why people still live near them.</p>\n")
    body = head + filler * ((size - len(head) - len(tail)) // len(filler))
    return body + b" " * (size - len(body) - len(tail)) + tail


def sg(*args: str, config: Path, data: Path) -> str:
    """Run one `schoolgate` command (from this checkout) and return its output; raise when it fails."""
    cmd = [sys.executable, "-m", "proxy.cli", *args, "--config", str(config), "--data", str(data)]
    out = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
                         text=True, timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"schoolgate {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()[-500:]}")
    return out.stdout


def school_config(workdir: Path, listen_port: int) -> Path:
    """The demo school's config (loopback = KS2 laptop) with `[proxy] listen_port` set."""
    from config.loader import DEFAULT_CONFIG

    cfg = workdir / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    text = DEFAULT_CONFIG.read_text()
    proxy_at = text.index("[proxy]")
    section = re.sub(r"(?m)^listen_port = \d+", f"listen_port = {listen_port}", text[proxy_at:], count=1)
    (cfg / "school.toml").write_text(text[:proxy_at] + section)
    for name in ("users.csv", "devices.csv"):
        shutil.copy(DEFAULT_CONFIG.with_name(name), cfg / name)
    return cfg / "school.toml"


def _cache_key(tree: Path) -> str:
    """The tree (path, size, time) and the index format version: a new format means a new compile."""
    from categories.index import VERSION

    stat = tree.stat()
    return hashlib.sha1(f"{tree.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{VERSION}".encode()).hexdigest()[:12]


def data_template(tree: Path, say: Callable[..., None]) -> Path:
    """A data dir after `init --offline` and `categories update --from TREE` (made once, cached)."""
    out = CACHE / f"proxy-data-{_cache_key(tree)}"
    if not out.exists():
        say(f"compiling {tree} into a data dir (once; about a minute) ...")
        work = Path(tempfile.mkdtemp(prefix="proxy-data-", dir=CACHE))
        config = school_config(work, 8080)
        sg("init", "--offline", config=config, data=work / "var")
        sg("categories", "update", "--from", str(tree), config=config, data=work / "var")
        os.replace(work / "var", out)
        shutil.rmtree(work)
    return out


def domains_file(tree: Path) -> Path:
    """Every listed name of the tree, one per line (for e2guardian), made once and cached."""
    out = CACHE / f"proxy-domains-{_cache_key(tree)}.txt"
    if not out.exists():
        part = out.with_suffix(".part")
        read_names(tree, part)
        os.replace(part, out)
    return out


def prepare_school(tree: Path, workdir: Path, nginx_url: str, say: Callable[..., None]) -> tuple[Path, Path, int]:
    """Config and data dir for `schoolgate run`; checks that nginx's URL is allowed and bet365.com blocked."""
    port = free_port(socket.SOCK_STREAM)
    config = school_config(workdir, port)
    data = workdir / "var"
    shutil.copytree(data_template(tree, say), data)
    sg("override", "add", "--group", "ks2", "--domain", "127.0.0.1", "--minutes", "240", "--by", "bench",
       "--reason", "benchmark: let the load through to the local nginx", config=config, data=data)
    for url, action in ((nginx_url, "allow"), ("http://bet365.com/", "block")):
        got = json.loads(sg("explain", url, "--ip", "127.0.0.1", "--json", config=config, data=data))
        if got["action"] != action or got["group"] != "ks2":
            raise RuntimeError(f"explain {url}: expected {action} for ks2, got {got}")
    return config, data, port


def start_schoolgate(config: Path, data: Path, port: int, probe: Callable[[int], bool], log: Path) -> Peer:
    started = time.perf_counter()
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "proxy.cli", "run", "--config", str(config), "--data",
                                 str(data)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                                stdout=out, stderr=subprocess.STDOUT)
    peer = Peer("schoolgate", proc, 0.0, port)
    return wait_ready(peer, lambda: probe(port), 120, started)


def visit_rows(data: Path) -> dict[str, object]:
    """What the stopped Schoolgate wrote: visit rows by (action, rule, host), and rows it dropped."""
    conn = sqlite3.connect(data / "schoolgate.db")
    try:
        rows = conn.execute("SELECT action, rule, host, COUNT(*) FROM visit_view GROUP BY 1, 2, 3").fetchall()
        dropped = conn.execute("SELECT value FROM meta WHERE key = 'visits_dropped'").fetchone()
    finally:
        conn.close()
    return {"rows": sum(r[3] for r in rows), "by_kind": {f"{a} {r} {h}": n for a, r, h, n in rows},
            "dropped": int(dropped[0]) if dropped else 0}


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def run_wrk(port: int, lua: Path, duration: int, threads: int = 2, connections: int = 50) -> dict[str, float]:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(lua),
           f"http://127.0.0.1:{port}"]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=duration + 60).stdout
    pct = {p: float(v) * _UNIT_MS[u] for p, v, u in re.findall(r"(?m)^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", text)}
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return {"rps": float(re.findall(r"Requests/sec:\s+([\d.]+)", text)[0]),
            "requests": float(re.findall(r"(\d+) requests in", text)[0]),
            "p50_ms": pct["50"], "p99_ms": pct["99"], "non2xx": float(non2xx[1]) if non2xx else 0.0,
            "socket_errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0}


def measure(peer: Peer, lua: Path, duration: int, say: Callable[..., None]) -> dict[str, float]:
    """One wrk run through `peer`; also its RSS after the load and the CPU time it spent per request."""
    cpu = peer.tree_cpu_s()
    result = run_wrk(peer.port, lua, duration)
    result["rss_mb"] = peer.tree_rss_mb()   # after the load, while the connections are still fresh
    result["cpu_ms_per_req"] = (peer.tree_cpu_s() - cpu) * 1000 / max(result["requests"], 1)
    single = run_wrk(peer.port, lua, min(duration, 5), threads=1, connections=1)   # latency without queueing
    result.update({"c1_rps": single["rps"], "c1_p50_ms": single["p50_ms"], "c1_p99_ms": single["p99_ms"],
                   "c1_requests": single["requests"], "c1_non2xx": single["non2xx"]})
    say(f"  {peer.name:11} {result['rps']:>9.0f} req/s  p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms"
        f"  RSS {result['rss_mb']:6.1f} MB  CPU {result['cpu_ms_per_req']:.3f} ms/req"
        f"  non-2xx {result['non2xx']:.0f}  errors {result['socket_errors']:.0f}"
        f"  | 1 connection: p50 {result['c1_p50_ms']:.2f} ms  p99 {result['c1_p99_ms']:.2f} ms")
    return result


def summarise(name: str, runs: list[dict[str, float]]) -> dict[str, float]:
    out = {f"{name}_{k}": round(statistics.median(r[k] for r in runs), 3)
           for k in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_req", "c1_rps", "c1_p50_ms", "c1_p99_ms")}
    out[f"{name}_rss_mb"] = round(max(r["rss_mb"] for r in runs), 1)
    out[f"{name}_requests"] = sum(r["requests"] + r["c1_requests"] for r in runs)   # both loads
    out[f"{name}_non2xx"] = sum(r["non2xx"] + r["c1_non2xx"] for r in runs)
    out[f"{name}_socket_errors"] = sum(r["socket_errors"] for r in runs)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", type=Path, help="UT1-layout tarball (default: full scale, generated and cached)")
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    ap.add_argument("--rounds", type=int, default=2, help="load each proxy this many times, in turn")
    ap.add_argument("--duration", type=int, default=10, help="seconds of load per wrk run")
    ap.add_argument("--no-e2guardian", action="store_true")
    args = ap.parse_args()
    say: Callable[..., None] = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))
    tree = args.tree or full_tree()
    body = html_body()
    result: dict[str, object] = {"tree": str(tree), "load_avg_before": os.getloadavg()[0]}
    peers: list[Peer] = []
    try:
        with tempfile.TemporaryDirectory(prefix="sg-bench-proxy-") as tmp_name:
            tmp = Path(tmp_name)
            os.chmod(tmp, 0o755)   # nginx's worker and e2guardian run as unprivileged users
            nginx = start_nginx(tmp / "nginx", body)
            peers.append(nginx)
            url, host = f"http://127.0.0.1:{nginx.port}/file", f"127.0.0.1:{nginx.port}"
            lua = tmp / "proxy.lua"
            lua.write_text(f'wrk.path = "{url}"\nwrk.headers["Host"] = "{host}"\n')

            def probe(port: int) -> bool:
                return http_get_via(port, url, host) == (200, body)

            say(f"tree: {tree}\nloading nginx direct ...")
            runs: dict[str, list[dict[str, float]]] = {"nginx": [measure(nginx, lua, args.duration, say)]}
            config, data, sg_port = prepare_school(tree, tmp / "school", url, say)
            targets = [start_mitmdump(tmp / "mitmdump", url, host, body),
                       start_schoolgate(config, data, sg_port, probe, tmp / "schoolgate.log")]
            if not args.no_e2guardian:
                say("starting e2guardian with every listed name banned ...")
                targets.append(start_e2guardian(tmp / "e2guardian", domains_file(tree), url, host, body))
            peers += targets
            for peer in targets:
                result[f"{peer.name}_ready_s"] = round(peer.ready_s, 2)
                result[f"{peer.name}_rss_idle_mb"] = round(peer.tree_rss_mb(), 1)
            loads: list[float] = []
            for n in range(args.rounds):
                loads.append(round(os.getloadavg()[0], 2))
                say(f"round {n + 1} of {args.rounds} (load average {loads[-1]}):")
                for peer in targets:
                    runs.setdefault(peer.name, []).append(measure(peer, lua, args.duration, say))
            result["load_avg_rounds"] = loads
            result.update(per_round(runs))
            for peer in reversed(peers):
                peer.stop()
            for name, each in runs.items():
                result.update(summarise(name, each))
            visits = visit_rows(data)
            result.update({"schoolgate_visit_rows": visits["rows"], "schoolgate_visits_dropped": visits["dropped"],
                           "schoolgate_visit_kinds": visits["by_kind"]})
    finally:
        for peer in peers:
            peer.stop()
    result.update(goals(result))
    result["machine"] = machine()
    say(json.dumps(result, indent=1))
    print(json.dumps(result))


def per_round(runs: dict[str, list[dict[str, float]]]) -> dict[str, object]:
    """Schoolgate / mitmdump in each round (both loaded back to back, so under much the same load)."""
    pairs = list(zip(runs.get("schoolgate", []), runs.get("mitmdump", []), strict=True))
    rps, cpu = ([round(a[key] / b[key], 3) if b[key] else 0.0 for a, b in pairs] for key in ("rps", "cpu_ms_per_req"))
    return {"rounds_rps_ratio": rps, "rounds_cpu_ratio": cpu, "rounds_rps_ratio_median": round(statistics.median(
        rps or [0.0]), 3), "rounds_cpu_ratio_median": round(statistics.median(cpu or [0.0]), 3)}


def goals(r: dict[str, object]) -> dict[str, object]:
    def f(key: str) -> float:
        value = r.get(key, 0.0)
        return float(value) if isinstance(value, int | float) else 0.0

    ratio = f("schoolgate_rps") / f("mitmdump_rps") if f("mitmdump_rps") else 0.0
    out: dict[str, object] = {
        "schoolgate_vs_mitmdump_rps": round(ratio, 3),
        "schoolgate_p99_extra_ms": round(f("schoolgate_p99_ms") - f("mitmdump_p99_ms"), 2),
        "schoolgate_rss_extra_mb": round(f("schoolgate_rss_mb") - f("mitmdump_rss_mb"), 1),
        "schoolgate_c1_p50_extra_ms": round(f("schoolgate_c1_p50_ms") - f("mitmdump_c1_p50_ms"), 3),
    }
    if f("mitmdump_cpu_ms_per_req"):
        out["schoolgate_vs_mitmdump_cpu_per_req"] = round(f("schoolgate_cpu_ms_per_req")
                                                          / f("mitmdump_cpu_ms_per_req"), 3)
    if f("e2guardian_rps"):
        out["schoolgate_vs_e2guardian_rps"] = round(f("schoolgate_rps") / f("e2guardian_rps"), 3)
    out["goals_met"] = {
        "rps": ratio >= GOALS["rps_ratio"],
        "p99": f("schoolgate_p99_ms") - f("mitmdump_p99_ms") <= GOALS["p99_extra_ms"],
        "rss": f("schoolgate_rss_mb") - f("mitmdump_rss_mb") <= GOALS["rss_extra_mb"],
        "all_allowed": f("schoolgate_non2xx") == 0 and f("schoolgate_socket_errors") == 0,
        # every answered request has its row (wrk does not count the ones still in flight when it stops)
        "visits_logged": f("schoolgate_visit_rows") >= f("schoolgate_requests") > 0,
    }
    return out


if __name__ == "__main__":
    main()
