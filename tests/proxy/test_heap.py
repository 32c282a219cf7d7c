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
