"""Benchmark of the category engine at full UT1 scale, beside dnsmasq.

    python -m bench.categories [--tree PATH] [--json] [--no-peer] [--queries N] [--passes N]

The tree is a UT1-layout tarball; without --tree the full-scale one is made
once with `../shared/tools/gen-scale-list --merge ../shared/data/ut1-blacklists.tar.gz`
and cached under /tmp/schoolgate-bench/ (~5.7M domain lines).  One run measures:
- compile_s: import the tarball + built-in lists and write the index (this process);
- index_mb: the index file's size;
- open_ms, rss_added_mb, host_lookups_per_s, url_checks_per_s: in a fresh
  subprocess: VmRSS before opening, the first open's time, then N host lookups
  and N whole URL checks (normalise + host + URL lists + expressions) on one
  core (best of --passes passes; nothing is cached between passes, every
  query is a distinct host), VmRSS after (file pages the lookups touched
  count).  Each rate is given by the wall clock and by the process's CPU
  time (`*_per_cpu_s`: what one core does when the machine is shared), with
  the 1-minute load average when the measuring started, and `host_loop` (C or
  Python: `categories.hostprobe`);
- the peer, dnsmasq with one `address=/NAME/0.0.0.0` line per listed name
  (PEERS.md): time until it answers a query, and its VmRSS.
The query mix: a third listed names (all categories), a third subdomains of
listed names (`www.`, `cdn.`...), a third names that are not listed.
The last line printed is one JSON object (with --json: only that line).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench._peers import machine, start_dnsmasq

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared"
CACHE = Path("/tmp/schoolgate-bench")
_NAME = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]")
PUBLISHED = [
    ("AdGuard Home", "400-500 MB for 2.14M rules (~1 GB rebuilding); ~25-27k queries/s"),
    ("Pi-hole v6", "list rebuild over 512 MB for 5.8M domains"),
    ("Blocky", "~100 MB for a 1.4M-domain list"),
    ("ufdbGuard", "60,000 URL checks/s on one core (vendor's claim)"),
]

CHILD = r"""
import json, os, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from bench._peers import rss_mb
from categories.index import CategoryIndex
from categories.normalise import normalise_url
from categories.hostprobe import IMPLEMENTATION
queries = json.loads(Path(sys.argv[3]).read_text())
hosts, urls = queries["hosts"], queries["urls"]
passes = int(sys.argv[4])
before = rss_mb()
t = time.perf_counter()
ix = CategoryIndex.open(Path(sys.argv[2]))
open_ms = (time.perf_counter() - t) * 1000
opens = []
for _ in range(5):
    t = time.perf_counter(); CategoryIndex.open(Path(sys.argv[2])).close()
    opens.append((time.perf_counter() - t) * 1000)
lookup, check = ix.lookup_host, ix.lookup_url
load = os.getloadavg()[0]
wall, cpu = time.perf_counter, time.process_time
first_host = [wall(), cpu()]
hits = sum(1 for h in hosts if lookup(h))  # the first, cold pass (pages of the file faulted in)
first_host = [wall() - first_host[0], cpu() - first_host[1]]
host_s, url_s, host_cpu, url_cpu = [], [], [], []
for _ in range(passes):
    t, c = wall(), cpu()
    for h in hosts:
        lookup(h)
    host_s.append(wall() - t); host_cpu.append(cpu() - c)
    t, c = wall(), cpu()
    for u in urls:
        check(normalise_url(u))
    url_s.append(wall() - t); url_cpu.append(cpu() - c)
after = rss_mb()
n = len(hosts)
print(json.dumps({"open_ms": open_ms, "open_ms_warm": sorted(opens)[2], "rss_before_mb": before,
                  "rss_after_mb": after, "host_lookups_per_s": n / min(host_s),
                  "url_checks_per_s": len(urls) / min(url_s),
                  "host_lookups_per_cpu_s": n / min(host_cpu), "url_checks_per_cpu_s": len(urls) / min(url_cpu),
                  "host_lookups_first_pass_per_s": n / first_host[0],
                  "host_hits": hits / n, "host_loop": IMPLEMENTATION,
                  "load_avg_1m": load, "load_avg_1m_after": os.getloadavg()[0]}))
"""


def full_tree() -> Path:
    out = CACHE / "ut1-full.tar.gz"
    if not out.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".part")
        subprocess.run([sys.executable, str(SHARED / "tools" / "gen-scale-list"), str(tmp),
                        "--merge", str(SHARED / "data" / "ut1-blacklists.tar.gz")],
                       check=True, stdout=subprocess.DEVNULL)
        os.replace(tmp, out)
    return out


def read_names(tree: Path, domains_out: Path) -> tuple[list[str], list[str]]:
    """Write every listed name to `domains_out` (for dnsmasq); return all names and URL entries."""
    names: list[str] = []
    urls: list[str] = []
    with tarfile.open(tree, "r|*") as tar:
        for info in tar:
            leaf = info.name.rsplit("/", 1)[-1]
            if not info.isreg() or leaf not in ("domains", "urls"):
                continue
            handle = tar.extractfile(info)
            lines = handle.read().decode("utf-8", "replace").split() if handle else []
            (names if leaf == "domains" else urls).extend(lines)
    unique = sorted({n.lower() for n in names if _NAME.fullmatch(n.lower())})
    domains_out.write_text("\n".join(unique) + "\n")
    return unique, urls


def make_queries(names: list[str], urls: list[str], n: int, seed: int = 11) -> dict[str, list[str]]:
    rng = random.Random(seed)
    third = n // 3
    listed = rng.sample(names, third)
    subs = [f"{rng.choice(['www', 'cdn', 'img', 'm', 'static'])}.{name}"
            for name in rng.sample(names, third)]
    words = ["news", "maths", "shop", "cloud", "learn", "play", "music", "city", "data", "blog"]
    tlds = ["com", "co.uk", "org", "net", "org.uk", "io", "de", "fr"]
    unlisted = [f"{rng.choice(['www.', '', 'api.'])}{rng.choice(words)}{rng.randint(1, 10**6)}"
                f"{rng.choice(words)}.{rng.choice(tlds)}" for _ in range(n - 2 * third)]
    hosts = listed + subs + unlisted
    rng.shuffle(hosts)
    paths = ["/", "/index.html", "/search?q=volcanoes", "/images/banner/ad.gif",
             "/static/app.js", "/watch?v=abc123", "/games/play/12", "/wiki/Roman_Empire"]
    url_list = [f"https://{h}{rng.choice(paths)}" for h in hosts]
    for i, entry in enumerate(rng.sample(urls, min(len(urls), n // 20))):
        url_list[i * 20 % n] = f"http://{entry}"
    return {"hosts": hosts, "urls": url_list}


def compile_tree(tree: Path, index: Path) -> float:
    from categories.compiler import compile_index
    from categories.curated import load_builtin
    from categories.ut1 import read_ut1
    start = time.perf_counter()
    compile_index([load_builtin(), read_ut1(tree)], index)
    return time.perf_counter() - start


def measure_child(index: Path, queries: Path, passes: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(index), str(queries), str(passes)],
                         check=True, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", type=Path, help="UT1-layout tarball (default: full scale, generated)")
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    ap.add_argument("--no-peer", action="store_true", help="skip dnsmasq")
    ap.add_argument("--queries", type=int, default=100_000)
    ap.add_argument("--passes", type=int, default=5, help="timed passes over the queries (best counts)")
    args = ap.parse_args()
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))
    tree = args.tree or full_tree()
    with tempfile.TemporaryDirectory(prefix="sg-bench-cat-") as tmp_name:
        tmp = Path(tmp_name)
        index = tmp / "categories.idx"
        say(f"tree: {tree}")
        compile_s = compile_tree(tree, index)
        compile_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        say(f"compiled in {compile_s:.1f} s, {index.stat().st_size / 1e6:.1f} MB")
        names, urls = read_names(tree, tmp / "domains.txt")
        (tmp / "queries.json").write_text(json.dumps(make_queries(names, urls, args.queries)))
        child = measure_child(index, tmp / "queries.json", args.passes)
        result: dict[str, object] = {
            "compile_s": round(compile_s, 2), "compile_peak_rss_mb": round(compile_peak, 1),
            "index_mb": round(index.stat().st_size / 1e6, 1),
            "open_ms": round(child["open_ms"], 2), "open_ms_warm": round(child["open_ms_warm"], 2),
            "rss_added_mb": round(child["rss_after_mb"] - child["rss_before_mb"], 1),
            "host_lookups_per_s": round(child["host_lookups_per_s"]),
            "url_checks_per_s": round(child["url_checks_per_s"]),
            "host_lookups_per_cpu_s": round(child["host_lookups_per_cpu_s"]),
            "url_checks_per_cpu_s": round(child["url_checks_per_cpu_s"]),
            "host_lookups_first_pass_per_s": round(child["host_lookups_first_pass_per_s"]),
            "host_loop": child["host_loop"],
            "load_avg_1m": round(child["load_avg_1m"], 2),
            "load_avg_1m_after": round(child["load_avg_1m_after"], 2),
            "listed_names": len(names), "queries": args.queries,
            "query_hit_rate": round(child["host_hits"], 3),
        }
        if not args.no_peer:
            peer = None
            try:
                peer = start_dnsmasq(tmp / "domains.txt", tmp, probe=names[0])
                result["dnsmasq_ready_s"] = round(peer.ready_s, 2)
                result["dnsmasq_rss_mb"] = round(peer.rss_mb(), 1)
            except RuntimeError as exc:
                result["dnsmasq_error"] = str(exc)
            finally:
                if peer is not None:
                    peer.stop()
    result["machine"] = machine()
    say("")
    say(f"{'':28}{'schoolgate':>14}{'dnsmasq':>12}")
    say(f"{'ready / open':28}{result['open_ms']:>11} ms{result.get('dnsmasq_ready_s', '-'):>10} s")
    say(f"{'resident memory added':28}{result['rss_added_mb']:>11} MB{result.get('dnsmasq_rss_mb', '-'):>9} MB")
    say(f"{'host lookups/s (1 core)':28}{result['host_lookups_per_s']:>14}"
        f"   (per CPU second: {result['host_lookups_per_cpu_s']})")
    say(f"{'URL checks/s (1 core)':28}{result['url_checks_per_s']:>14}"
        f"   (per CPU second: {result['url_checks_per_cpu_s']})")
    say(f"{'load average (1 min)':28}{result['load_avg_1m']:>14} on {os.cpu_count()} CPUs")
    say(f"{'compile':28}{result['compile_s']:>12} s (peak RSS {result['compile_peak_rss_mb']} MB)")
    say(f"{'index file':28}{result['index_mb']:>11} MB")
    say("published by others (PEERS.md):")
    for name, figure in PUBLISHED:
        say(f"  {name}: {figure}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
