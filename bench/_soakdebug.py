"""`bench.soak --tracemalloc`: find where memory grows inside the running service.

The service is started as `python -X tracemalloc=1 -c CHILD ROOT SNAPSHOT run ...`: CHILD
installs a SIGUSR1 handler that dumps a tracemalloc snapshot to `SNAPSHOT.<k>` (k counts the
signals), then runs `schoolgate` as usual.  `take_snapshot` signals and waits for the file;
`growth` diffs two snapshots by allocating line, biggest growth first.  Tracing costs time and
memory, so the figures of a debug run are not the soak's figures.
"""
from __future__ import annotations

import asyncio
import os
import signal
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = r"""
import os, signal, sys, tracemalloc
sys.path.insert(0, sys.argv[1])
target = sys.argv[2]
taken = [0]
def dump(signum, frame):
    taken[0] += 1
    snap = tracemalloc.take_snapshot()
    snap.dump(f"{target}.{taken[0]}.part")
    os.replace(f"{target}.{taken[0]}.part", f"{target}.{taken[0]}")
signal.signal(signal.SIGUSR1, dump)
from proxy.cli import main
sys.exit(main(sys.argv[3:]))
"""


async def take_snapshot(pid: int, base: Path, k: int, timeout: float = 300) -> Path:
    """Ask the service for its k-th snapshot (SIGUSR1) and wait until it is written."""
    path = Path(f"{base}.{k}")
    os.kill(pid, signal.SIGUSR1)
    started = time.perf_counter()
    while not path.exists():
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"no tracemalloc snapshot {path} after {timeout:.0f} s")
        await asyncio.sleep(0.2)
    return path


def growth(base: Path, first: int, second: int, top: int = 15) -> list[str]:
    """The `top` source lines whose allocations grew most from snapshot `first` to `second`."""
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, "<unknown>"),
              tracemalloc.Filter(False, "<frozen importlib._bootstrap>")]
    old = tracemalloc.Snapshot.load(f"{base}.{first}").filter_traces(ignore)
    new = tracemalloc.Snapshot.load(f"{base}.{second}").filter_traces(ignore)
    stats = new.compare_to(old, "lineno")
    out = []
    for stat in stats[:top]:
        frames = " <- ".join(f"{f.filename.split('site-packages/')[-1].replace(str(ROOT) + '/', '')}:{f.lineno}"
                             for f in list(stat.traceback)[::-1][:4])
        out.append(f"{stat.size_diff / 1024:+.1f} KiB ({stat.count_diff:+d} blocks, now {stat.size / 1024:.1f} KiB)"
                   f" at {frames}")
    return out
