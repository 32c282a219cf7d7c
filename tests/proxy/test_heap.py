"""proxy.heap.trim: memory freed by a burst goes back to the system (glibc), in this very process."""
from __future__ import annotations

import gc
from pathlib import Path

import pytest

from proxy import heap


def rss_anon_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no RssAnon in /proc/self/status")


def test_a_freed_burst_is_handed_back() -> None:
    heap.trim()
    base = rss_anon_mb()
    burst = [bytes(2048) for _ in range(40_000)]      # ~80 MB in malloc'd blocks (over pymalloc's 512 B)
    kept = burst[::10]                                # a few survivors keep the heap from shrinking by itself
    del burst
    gc.collect()
    held = rss_anon_mb()
    if not heap.trim():
        pytest.skip("no malloc_trim in this C library")
    after = rss_anon_mb()
    assert held - base > 50                           # the allocator kept the freed burst ...
    assert held - after > 40, (base, held, after)     # ... until trim gave it back
    assert len(kept) == 4_000


def test_frozen_start_up_objects_are_left_out_of_full_collections() -> None:
    """In a child process (a freeze is for good): a full collection after the freeze skips what start-up made."""
    import subprocess
    import sys

    child = r"""
import gc, time
from proxy import heap

class Node:
    def __init__(self):
        self.me = self                          # a cycle: only the cyclic collector frees it
startup = [Node() for _ in range(300_000)]      # the long-lived state of a service
def full_collection_ms():
    t = time.perf_counter(); gc.collect(); return (time.perf_counter() - t) * 1000
before = min(full_collection_ms() for _ in range(3))
frozen = heap.freeze_startup_objects()
after = min(full_collection_ms() for _ in range(3))
garbage = Node(); del garbage                   # made after the freeze: still collected
print(frozen, before, after, gc.collect())
"""
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    frozen, before, after, collected = int(out[0]), float(out[1]), float(out[2]), int(out[3])
    assert frozen >= 300_000
    assert after < before / 5, (before, after)    # the 300k objects are no longer walked
    assert collected >= 1
