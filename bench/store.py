"""Benchmark of the store: visits/s through the BatchWriter, and bytes per visit.

    python -m bench.store [--json] [--rows N] [--dir DIR]

Realistic data: 1,500 users, 300 devices, ~5,000 distinct hosts with a Zipf-like
popularity, per-host path pools (also Zipf), some kept search queries, 20% blocked.
The records are made before the clock starts; then every record is submitted to a
`BatchWriter` (queue large enough: none dropped) as fast as possible and the time
until `stop()` has written them all gives rows/s.  Bytes per visit is the database
file size after `PRAGMA wal_checkpoint(TRUNCATE)` divided by the rows, indexes and
dictionaries included.

Peer, measured in the same run on the same data: the naive design a first version
would use, one table of text columns with the same two indexes (ts; user, ts),
written with the same batch size in one transaction per batch.
The last line printed is one JSON object (with --json: only that line).
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from proxy.records import VisitRecord, categoryset_text
from proxy.visitwriter import BatchWriter

T0 = 1_767_600_000.0
BATCH = 2_000
CATEGORY_SETS = [("games",), ("social_networks",), ("shopping",), ("adult",), ("chat",),
                 ("games", "child"), ("vpn",), ("webmail",), ("celebrity",), ("manga",)]
ALLOWED_SETS = [(), (), (), ("educational_games",), ("child",), ("press",), ("search_engines",)]
RULES_BLOCK = ["category.blocked", "category.blocked_everyone", "walled_garden.not_listed",
               "register.no_consent", "schedule.games_school_hours", "bare_ip.pupil"]
RULES_ALLOW = ["default.allow", "walled_garden.listed", "override.category", "local.allow"]
TERMS = [f"{w} {x}" for w in ("volcano", "roman", "tudor", "space", "fractions", "minecraft",
                              "rainforest", "viking", "egypt", "spelling") for x in range(200)]
PATH_SHAPES = ["/", "/favicon.ico", "/static/js/app.{h}.js", "/static/css/site.{h}.css",
               "/images/{n}/{w}-{n2}.jpg", "/wiki/{W}_{W2}", "/watch?v={h}", "/article/{n}/{w}-{w2}",
               "/api/v2/items/{n}", "/games/{w}-{w2}/play", "/{w}/{w2}/{n}.html", "/search?q={t}"]
WORDS = ["maths", "reading", "science", "history", "animals", "planets", "music", "art", "puzzle",
         "story", "river", "forest", "ocean", "castle", "robot", "dragon", "garden", "weather"]


def _path(rng: random.Random) -> str:
    shape = rng.choice(PATH_SHAPES)
    return shape.format(h=f"{rng.getrandbits(40):010x}", n=rng.randint(1, 99_999),
                        n2=rng.randint(1, 999), w=rng.choice(WORDS), w2=rng.choice(WORDS),
                        W=rng.choice(WORDS).title(), W2=rng.choice(WORDS).title(),
                        t=rng.choice(TERMS).replace(" ", "+"))


def make_visits(rows: int, seed: int = 7) -> list[VisitRecord]:
    """`rows` realistic visits, in time order."""
    rng = random.Random(seed)
    users = [(f"pupil{i:04d}", "ks1" if i < 500 else "ks2") for i in range(1_350)]
    users += [(f"staff{i:03d}", "staff") for i in range(150)]
    devices = [(f"dev-{i:03d}", f"10.20.{1 + i // 100}.{10 + i % 100}") for i in range(300)]
    hosts = [f"{rng.choice(WORDS)}{i}.{rng.choice(['co.uk', 'com', 'org', 'org.uk', 'net'])}"
             for i in range(5_000)]
    host_weights = [1 / (rank + 1) ** 1.1 for rank in range(len(hosts))]
    pools: dict[int, tuple[list[str], list[float]]] = {}
    host_picks = rng.choices(range(len(hosts)), weights=host_weights, k=rows)
    out: list[VisitRecord] = []
    ts = T0
    for i in range(rows):
        ts += rng.expovariate(50.0)  # ~50 visits/s at the gateway
        h = host_picks[i]
        if h not in pools:
            size = max(4, int(3_000 / (h + 1) ** 0.6))
            paths = [_path(rng) for _ in range(size)]
            pools[h] = (paths, list(itertools.accumulate(1 / (r + 1) for r in range(size))))
        paths, cumulative = pools[h]
        path = _path(rng) if rng.random() < 0.04 else rng.choices(paths, cum_weights=cumulative)[0]
        user, group = users[rng.randrange(len(users))]
        device, ip = devices[rng.randrange(len(devices))]
        anonymous = rng.random() < 0.15
        blocked = rng.random() < 0.20
        term = path.split("=", 1)[1].replace("+", " ") if path.startswith("/search?q=") else None
        out.append(VisitRecord(
            ts=ts, user=None if anonymous else user, group="guest" if anonymous else group,
            device=device, client_ip=ip, method="GET" if rng.random() < 0.93 else "POST",
            scheme="https" if rng.random() < 0.95 else "http", host=hosts[h], path=path,
            categories=rng.choice(CATEGORY_SETS if blocked else ALLOWED_SETS),
            action="block" if blocked else "allow",
            rule=rng.choice(RULES_BLOCK if blocked else RULES_ALLOW), search_term=term,
            bytes=0 if blocked else int(rng.lognormvariate(8, 2)),
            page_view=rng.random() < 0.25, flagged=blocked and rng.random() < 0.1,
            intercepted=rng.random() < 0.9, status=None if blocked else rng.choice([200] * 8 + [304, 404]),
        ))
    return out


def _size(path: Path) -> int:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def bench_writer(visits: list[VisitRecord], path: Path) -> dict[str, float]:
    writer = BatchWriter(path, queue_size=len(visits) + 1, batch_size=BATCH, flush_interval=0.05)
    await writer.start()
    started = time.perf_counter()
    for visit in visits:
        writer.submit(visit)
    submitted = time.perf_counter()
    await writer.stop()
    elapsed = time.perf_counter() - started
    stats = writer.stats
    assert stats.written == len(visits) and stats.dropped == 0, stats
    size = _size(path)
    return {"rows_per_s": len(visits) / elapsed, "bytes_per_visit": size / len(visits),
            "submit_ns": (submitted - started) / len(visits) * 1e9, "seconds": elapsed,
            "batches": stats.batches}


NAIVE_SCHEMA = """
CREATE TABLE naive_visits (ts REAL, user TEXT, grp TEXT, device TEXT, client_ip TEXT,
    method TEXT, scheme TEXT, host TEXT, path TEXT, categories TEXT, action TEXT, rule TEXT,
    search_term TEXT, bytes INTEGER, page_view INTEGER, flagged INTEGER, intercepted INTEGER,
    status INTEGER);
CREATE INDEX naive_ts ON naive_visits(ts);
CREATE INDEX naive_user_ts ON naive_visits(user, ts);
"""


def bench_naive(visits: list[VisitRecord], path: Path) -> dict[str, float]:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(NAIVE_SCHEMA)
    started = time.perf_counter()
    for start in range(0, len(visits), BATCH):
        rows = [(v.ts, v.user, v.group, v.device, v.client_ip, v.method, v.scheme, v.host, v.path,
                 categoryset_text(v.categories), v.action, v.rule, v.search_term, v.bytes,
                 v.page_view, v.flagged, v.intercepted, v.status)
                for v in visits[start:start + BATCH]]
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(f"INSERT INTO naive_visits VALUES ({', '.join('?' * 18)})", rows)
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    conn.close()
    return {"rows_per_s": len(visits) / elapsed, "bytes_per_visit": _size(path) / len(visits)}


def breakdown(path: Path, rows: int) -> dict[str, float]:
    """Bytes per visit of each table and index (dbstat)."""
    conn = sqlite3.connect(path)
    try:
        found = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name "
                             "ORDER BY 2 DESC LIMIT 8").fetchall()
    except sqlite3.OperationalError:  # SQLite built without dbstat
        return {}
    finally:
        conn.close()
    return {name: round(size / rows, 1) for name, size in found}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.store", description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--dir", type=Path, default=None, help="where the database files go")
    args = parser.parse_args(argv)
    say = (lambda *a: None) if args.json else print
    made = time.perf_counter()
    visits = make_visits(args.rows)
    say(f"made {len(visits):,} visits in {time.perf_counter() - made:.1f} s "
        f"({len({v.host for v in visits}):,} hosts, {len({v.path for v in visits}):,} paths)")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        ours = asyncio.run(bench_writer(visits, Path(tmp) / "store.sqlite3"))
        parts = breakdown(Path(tmp) / "store.sqlite3", len(visits))
        naive = bench_naive(visits, Path(tmp) / "naive.sqlite3")
    result = {
        "rows": len(visits), "rows_per_s": round(ours["rows_per_s"]),
        "bytes_per_visit": round(ours["bytes_per_visit"], 1),
        "submit_ns": round(ours["submit_ns"]), "batches": ours["batches"],
        "naive_rows_per_s": round(naive["rows_per_s"]),
        "naive_bytes_per_visit": round(naive["bytes_per_visit"], 1),
        "speed_ratio_vs_naive": round(ours["rows_per_s"] / naive["rows_per_s"], 2),
        "size_ratio_vs_naive": round(ours["bytes_per_visit"] / naive["bytes_per_visit"], 2),
        "distinct_paths_per_visit": round(len({v.path for v in visits}) / len(visits), 3),
        "breakdown_bytes_per_visit": parts,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "sqlite": sqlite3.sqlite_version},
    }
    say(f"BatchWriter: {result['rows_per_s']:,} rows/s, {result['bytes_per_visit']} bytes/visit, "
        f"submit() {result['submit_ns']} ns")
    say(f"naive text table: {result['naive_rows_per_s']:,} rows/s, "
        f"{result['naive_bytes_per_visit']} bytes/visit")
    say(f"per table/index: {parts}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
