"""The URL check of an older commit against the working tree's, on the same index and URLs, in turn.

    python -m bench.categories_ab REF [--rounds N] [--callgrind]

On a shared machine the absolute rate of `bench.categories` moves with the machine
(the same code measured 335k and 428k host lookups/s on one morning), so a change
to the URL check is judged here instead: REF's `categories/` (exported with `git
archive`) and the working tree's are run on the same full-scale index (compiled
once by the working tree and cached) and the same 100,000 URLs of
`bench.categories`, in ABBA order, each run the best of 3 passes of
`lookup_url(normalise_url(url))` per CPU second.  With --callgrind, also the
instructions per URL check of each (valgrind; the difference of a 3-pass and a
1-pass run over 20,000 URLs, so start-up cancels out; slow: a few minutes).
The index format must be the same for both.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.categories import CACHE, compile_tree, full_tree, make_queries, read_names

ROOT = Path(__file__).resolve().parents[1]
CHILD = r"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
from categories.index import CategoryIndex
from categories.normalise import normalise_url
urls = json.loads(Path(sys.argv[3]).read_text())["urls"][: int(sys.argv[5])]
check = CategoryIndex.open(Path(sys.argv[2])).lookup_url
for u in urls: check(normalise_url(u))
best = float("inf")
for _ in range(int(sys.argv[4])):
    t = time.process_time()
    for u in urls: check(normalise_url(u))
    best = min(best, time.process_time() - t)
print(len(urls) / best)
"""


def prepare() -> tuple[Path, Path]:
    """The cached full-scale index and queries (made by the working tree's compiler)."""
    index, queries = CACHE / "ab-full.idx", CACHE / "ab-queries.json"
    if not index.exists() or not queries.exists():
        tree = full_tree()
        with tempfile.TemporaryDirectory() as tmp:
            names, urls = read_names(tree, Path(tmp) / "domains.txt")
        queries.write_text(json.dumps(make_queries(names, urls, 100_000)))
        compile_tree(tree, index.with_suffix(".part"))
        index.with_suffix(".part").replace(index)
    return index, queries


def rate(root: Path, index: Path, queries: Path, passes: int = 3, count: int = 100_000) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, str(root), str(index), str(queries), str(passes), str(count)],
                         check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


def instructions(root: Path, index: Path, queries: Path) -> int:
    def total(passes: int) -> int:
        out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                              "-c", CHILD, str(root), str(index), str(queries), str(passes), "20000"],
                             check=True, capture_output=True, text=True)
        found = re.search(r"Collected : (\d+)", out.stderr)
        if found is None:
            raise RuntimeError(f"no instruction count from valgrind: {out.stderr[-500:]}")
        return int(found.group(1))
    return (total(3) - total(1)) // 40_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ref", help="the older commit (its categories/ is exported)")
    ap.add_argument("--rounds", type=int, default=3, help="ABBA rounds")
    ap.add_argument("--callgrind", action="store_true", help="also count instructions per URL check")
    args = ap.parse_args()
    index, queries = prepare()
    with tempfile.TemporaryDirectory(prefix="sg-ab-") as tmp:
        old = Path(tmp)
        archive = subprocess.run(["git", "archive", args.ref, "categories"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        roots = {args.ref: old, "working tree": ROOT}
        got: dict[str, list[float]] = {name: [] for name in roots}
        for _ in range(args.rounds):
            for name in (args.ref, "working tree", "working tree", args.ref):
                got[name].append(rate(roots[name], index, queries))
                print(f"{name:14} {got[name][-1]:>10,.0f} URL checks per CPU second", flush=True)
        result: dict[str, object] = {
            name: {"mean": round(statistics.mean(v)), "min": round(min(v)), "max": round(max(v))}
            for name, v in got.items()}
        result["change"] = round(statistics.mean(got["working tree"]) / statistics.mean(got[args.ref]) - 1, 4)
        if args.callgrind:
            result["instructions_per_check"] = {name: instructions(root, index, queries)
                                                for name, root in roots.items()}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
