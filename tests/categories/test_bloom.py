"""The Bloom filter in front of the name table: it may let unlisted names through, never hide one."""
from __future__ import annotations

import random
import string
import tarfile
from pathlib import Path

import pytest

from categories import bloom
from categories.compiler import compile_index
from categories.errors import IndexFormatError
from categories.index import CategoryIndex
from categories.lists import CategoryLists

from .conftest import need_ut1


def random_names(rng: random.Random, n: int) -> list[str]:
    tlds = ["com", "org", "co.uk", "net", "fr"]
    return [f"{''.join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 12)))}.{rng.choice(tlds)}"
            for _ in range(n)]


def test_fold_keeps_every_bit() -> None:
    rng = random.Random(4)
    names = [n.encode() for n in random_names(rng, 2000)]
    a, b = bloom.new_map(), bloom.new_map()
    for i, name in enumerate(names):
        bloom.add(a if i % 2 else b, name)
    size = bloom.size_for(len(names))
    assert size * 8 >= len(names) * bloom.BITS_PER_NAME and size & (size - 1) == 0
    folded = bloom.merge_and_fold([a, b], size)
    assert len(folded) == size
    assert all(bloom.maybe_listed(folded, name) for name in names)
    others = [n.encode() for n in random_names(random.Random(5), 2000)]
    passed = sum(bloom.maybe_listed(folded, n) for n in others)
    assert passed < len(others) // 4  # ~12% expected at 8-16 bits per name
    assert bloom.size_for(10**9) == bloom.MAX_BITS >> 3


def lookups(index: CategoryIndex, names: list[str]) -> list[frozenset[str]]:
    return [index.lookup_host(n) for n in names]


def test_same_answers_with_and_without_the_filter(tmp_path: Path) -> None:
    rng = random.Random(6)
    listed = random_names(rng, 5000)
    lists = CategoryLists("test")
    lists.add_domains("adult", listed[:3000])
    lists.add_domains("games", [f"www.{n}" for n in listed[3000:]])
    compile_index([lists], tmp_path / "with")
    lists.bloomed -= 1  # as if a name had been added without its bit: no filter at all
    compile_index([lists], tmp_path / "without")
    queries = (listed + [f"cdn.{n}" for n in listed[::3]] + [f"www.{n}" for n in listed[1::3]]
               + random_names(random.Random(7), 5000))
    with CategoryIndex.open(tmp_path / "with") as a, CategoryIndex.open(tmp_path / "without") as b:
        assert len(a._bloom) >= 5000 * bloom.BITS_PER_NAME // 8 and len(b._bloom) == 1
        assert lookups(a, queries) == lookups(b, queries)
        assert all(a.lookup_host(n) for n in listed)
        # the filter lets few unlisted names through to the MD5 probe
        unlisted = [n.encode() for n in random_names(random.Random(8), 3000)]
        assert sum(bloom.maybe_listed(a._bloom, n) for n in unlisted) < 600


def test_every_real_ut1_name_passes_the_filter(real_index: Path) -> None:
    with tarfile.open(need_ut1()) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("gambling/domains"))
        handle = tar.extractfile(member)
        assert handle is not None
        names = handle.read().decode().split()
    sample = random.Random(9).sample(names, min(3000, len(names)))
    with CategoryIndex.open(real_index) as index:
        assert len(index._bloom) > 1
        assert all("gambling" in index.lookup_host(n.lower()) for n in sample)


def test_bad_bloom_section_is_refused(tmp_path: Path) -> None:
    lists = CategoryLists("test")
    lists.add_domains("games", ["example.com"])
    compile_index([lists], tmp_path / "idx")
    data = bytearray((tmp_path / "idx").read_bytes())
    bloom_length_at = 32 + 16 * 7 + 8
    data[bloom_length_at: bloom_length_at + 8] = (3).to_bytes(8, "little")
    (tmp_path / "bad").write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match="bloom"):
        CategoryIndex.open(tmp_path / "bad")
    data[32 + 16 * 7: 32 + 16 * 8] = bytes(16)  # a file from before the filter: still opens
    (tmp_path / "old").write_bytes(bytes(data))
    with CategoryIndex.open(tmp_path / "old") as old:
        assert old.lookup_host("www.example.com") == {"games"}
