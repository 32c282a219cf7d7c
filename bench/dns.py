"""DNS resolver benchmark: Schoolgate's resolver against dnsmasq, same lists, same queries, same run.

    python -m bench.dns [--tree UT1.tar.gz] [--full FULL.tar.gz] [--seconds 10] [--json]

For each list (the real UT1 sample, every `domains` file of `--tree`; then the
full-scale tree, generated once with `../shared/tools/gen-scale-list --merge`
and cached under /tmp/schoolgate-bench/ unless `--full` names one):
- compile Schoolgate's category index from the tree (cached beside it, not timed here:
  `bench.categories` measures compiling);
- start a fake upstream (dnsmasq answering every name with 192.0.2.1: never a real
  resolver) for the names neither server blocks;
- start Schoolgate's resolver (`python -m proxy.cmd_dns`: the runtime, the query
  log on, rate limiting lifted) with a config in which the benchmark's network
  blocks every category of the list, like dnsmasq blocks every listed name;
  start-up = from spawning the process to its first answer;
- start dnsmasq with one `address=/NAME/0.0.0.0` per listed name (PEERS.md), the
  same fake upstream and a 10,000-name cache;
- `dnsperf -l SECONDS` against each, `--rounds` times, interleaved (best round
  counts: the machine is shared), with one query file: a third listed names,
  a third `www.` below listed names, a third allowed names (2,000 distinct, so
  both servers answer them from their caches after the first pass).
Every server listens on 127.0.0.1 and is stopped by its pid.  The last line
with `--json` is one JSON object of the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import tempfile
from pathlib import Path

from bench._dnspeers import (
    cpu_s,
    dnsperf,
    logged_rows,
    peak_rss_mb,
    start_dnsmasq,
    start_fake_upstream,
    start_schoolgate,
)
from bench._peers import Peer, machine

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"
CACHE = Path("/tmp/schoolgate-bench")
QUERIES = 100_000
ALLOWED = 2_000
_NAME = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]")


def listed_names(tree: Path, out: Path) -> list[str]:
    from bench.categories import read_names

    names, _ = read_names(tree, out)
    return [n for n in names if _NAME.fullmatch(n)]


def index_for(tree: Path) -> Path:
    """A compiled index of `tree` (built-in lists + the tree), cached by the tree's size and mtime."""
    from bench.categories import compile_tree

    st = tree.stat()
    index = CACHE / f"dns-{tree.stem}-{st.st_size}-{int(st.st_mtime)}.idx"
    if not index.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        part = index.with_suffix(".part")
        compile_tree(tree, part)
        os.replace(part, index)
    return index


def write_queries(names: list[str], path: Path, n: int = QUERIES, seed: int = 53) -> None:
    rng = random.Random(seed)
    words = ["news", "maths", "shop", "cloud", "learn", "play", "music", "city", "data", "blog"]
    allowed = [f"{rng.choice(words)}-{i}-{rng.choice(words)}.example" for i in range(ALLOWED)]
    lines = []
    for i in range(n):
        kind = i % 3
        name = rng.choice(names) if kind == 0 else "www." + rng.choice(names) if kind == 1 else rng.choice(allowed)
        lines.append(f"{name} A")
    rng.shuffle(lines)
    path.write_text("\n".join(lines) + "\n")


def write_config(work: Path, categories: list[str], port: int, upstream: int) -> Path:
    text = (ROOT / "config" / "example.toml").read_text()
    every = ", ".join(f'"{c}"' for c in categories)
    text = text.replace("pupils = [\n", f"pupils = [\n  {every},\n", 1)   # KS2 (loopback) blocks every list
    dns = (f'[dns]\nenabled = true\nlisten_host = "127.0.0.1"\nlisten_port = {port}\n'
           f'upstreams = ["127.0.0.1:{upstream}"]\nblock_answer = "zero"\n'
           "rate_limit_qps = 1000000\nrate_limit_burst = 1000000\n")
    start = text.index("[dns]")
    text = text[:start] + dns + text[text.index("\n[", start + 1) + 1:]
    for name in ("users.csv", "devices.csv"):
        shutil.copy(ROOT / "config" / name, work / name)
    config = work / "school.toml"
    config.write_text(text)
    return config


def run_list(label: str, tree: Path, work: Path, seconds: int, rounds: int) -> dict[str, object]:
    """Both servers on one list, `rounds` dnsperf runs each, interleaved (the machine is shared
    and noisy); the best round of each is its figure.  Keys `schoolgate_*` / `dnsmasq_*`."""
    from categories.index import CategoryIndex

    work.mkdir(parents=True)
    names = listed_names(tree, work / "domains.txt")
    index = index_for(tree)
    data = work / "data"
    data.mkdir()
    os.symlink(index, data / "categories.idx")
    with CategoryIndex.open(index) as opened:
        categories = list(opened.categories)
    queries = work / "queries.txt"
    write_queries(names, queries)
    upstream = start_fake_upstream(work)
    peers: list[Peer] = [upstream]
    sg_runs: list[dict[str, float]] = []
    dm_runs: list[dict[str, float]] = []
    try:
        config = write_config(work, categories, 0, upstream.port)
        school = start_schoolgate(work, config, data, probe=names[0])
        peers.append(school)
        sg_ready_rss = school.rss_mb()
        dm = start_dnsmasq(work, work / "domains.txt", upstream.port, probe=names[0])
        peers.append(dm)
        for _ in range(rounds):
            for peer, runs in ((school, sg_runs), (dm, dm_runs)):
                cpu = cpu_s(peer.proc.pid)
                run = dnsperf(peer.port, queries, seconds)
                run["cpu_us_per_query"] = (cpu_s(peer.proc.pid) - cpu) * 1e6 / max(1.0, run["qps"] * seconds)
                runs.append(run)
        sg_rss, sg_peak, dm_rss = school.rss_mb(), peak_rss_mb(school.proc.pid), dm.rss_mb()
        school.stop()
        rows = logged_rows(data / "schoolgate.db")
    finally:
        for peer in peers:
            peer.stop()
    sg = max(sg_runs, key=lambda r: r["qps"])
    dm_best = max(dm_runs, key=lambda r: r["qps"])
    result: dict[str, object] = {"names": float(len(names)), "schoolgate_qps": sg["qps"], "schoolgate_lost": sg["lost"],
              "schoolgate_latency_ms": sg["latency_ms"], "schoolgate_startup_s": school.ready_s,
              "schoolgate_ready_rss_mb": sg_ready_rss, "schoolgate_rss_mb": sg_rss, "schoolgate_peak_rss_mb": sg_peak,
              "schoolgate_rows_logged": float(rows), "schoolgate_qps_rounds": [r["qps"] for r in sg_runs],
              "schoolgate_cpu_us_per_query": sg["cpu_us_per_query"],
              "dnsmasq_cpu_us_per_query": dm_best["cpu_us_per_query"],
              "dnsmasq_qps": dm_best["qps"], "dnsmasq_lost": dm_best["lost"],
              "dnsmasq_latency_ms": dm_best["latency_ms"], "dnsmasq_startup_s": dm.ready_s, "dnsmasq_rss_mb": dm_rss,
              "dnsmasq_qps_rounds": [r["qps"] for r in dm_runs]}
    sg_rounds = ", ".join(f"{r['qps']:,.0f}" for r in sg_runs)
    dm_rounds = ", ".join(f"{r['qps']:,.0f}" for r in dm_runs)
    print(f"{label}: {len(names):,} names | schoolgate {sg['qps']:,.0f} q/s (rounds "
          f"{sg_rounds}; ready {school.ready_s:.2f} s, peak RSS {sg_peak:.0f} MB,"
          f" {rows:,} rows logged) | dnsmasq {dm_best['qps']:,.0f} q/s (rounds "
          f"{dm_rounds}; ready {dm.ready_s:.2f} s, RSS {dm_rss:.0f} MB)",
          flush=True)
    return result


def _f(value: object) -> float:
    assert isinstance(value, float)
    return value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", type=Path, default=SHARED / "data" / "ut1-blacklists.tar.gz",
                    help="the real UT1 sample (default: ../shared/data/ut1-blacklists.tar.gz)")
    ap.add_argument("--full", type=Path, default=None, help="full-scale tree (default: generated and cached)")
    ap.add_argument("--seconds", type=int, default=10, help="dnsperf run length per server")
    ap.add_argument("--rounds", type=int, default=2, help="dnsperf runs per server, interleaved (best counts)")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object, last")
    args = ap.parse_args()
    if not args.tree.exists():
        raise SystemExit(f"bench.dns: {args.tree} not found")
    if args.full is None:
        from bench.categories import full_tree

        args.full = full_tree()
    work = Path(tempfile.mkdtemp(prefix="schoolgate-bench-dns-"))
    try:
        real = run_list("real list", args.tree.resolve(), work / "real", args.seconds, args.rounds)
        full = run_list("full scale", args.full.resolve(), work / "full", args.seconds, args.rounds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures: dict[str, object] = {
        "schoolgate_qps": real["schoolgate_qps"], "dnsmasq_qps": real["dnsmasq_qps"],
        "ratio": _f(real["schoolgate_qps"]) / _f(real["dnsmasq_qps"]),
        "schoolgate_qps_full": full["schoolgate_qps"], "dnsmasq_qps_full": full["dnsmasq_qps"],
        "full_vs_real": _f(full["schoolgate_qps"]) / _f(real["schoolgate_qps"]),
        "startup_s": full["schoolgate_startup_s"], "rss_mb": full["schoolgate_peak_rss_mb"],
        "real": real, "full": full, "seconds": args.seconds, "rounds": args.rounds, "queries_file_lines": QUERIES,
        "machine": machine(),
    }
    print(f"ratio to dnsmasq (real list): {figures['ratio']:.2f}x; full scale / real: "
          f"{figures['full_vs_real']:.2f}; start-up {figures['startup_s']:.2f} s; peak RSS {figures['rss_mb']:.0f} MB")
    if args.json:
        print(json.dumps(figures, sort_keys=True))


if __name__ == "__main__":
    main()
