"""URL-list entries: looked up by candidate prefix (hashed table or blob `find`), as a scan would."""
from __future__ import annotations

import random
from pathlib import Path

from categories.compiler import compile_index
from categories.explain import url_entries
from categories.index import CategoryIndex
from categories.lists import CategoryLists
from categories.normalise import normalise_url
from categories.urlmatch import (
    PREFIX_ONLY,
    SMALL_BLOB,
    candidates,
    hashed_ids,
    matching_ids,
    path_key,
    path_matches,
    prefix_rows,
    scanned_ids,
)

SEGMENTS = ["a", "b", "docs", "d", "x1", "edit", "?", "=", "&", ";", "#", "/", "q", "id", "é"]


def random_path(rng: random.Random) -> str:
    return "/" + "".join(rng.choice(SEGMENTS) for _ in range(rng.randint(0, 6)))


def entries_for(rng: random.Random, n: int) -> list[tuple[int, str]]:
    return sorted({(rng.randint(0, 3), random_path(rng).lower()) for _ in range(n)})


def test_candidates_cover_every_matching_entry() -> None:
    rng = random.Random(1)
    for _ in range(3000):
        prefix, entry = random_path(rng), random_path(rng)
        if path_matches(prefix, entry):
            assert entry in set(candidates(prefix)), (prefix, entry)
        found = list(candidates(prefix))
        assert found[-1] == prefix and all(b.startswith(a) and b != a for a, b in zip(found, found[1:], strict=False))


def test_find_and_hashed_lookups_equal_a_scan() -> None:
    rng = random.Random(2)
    for _ in range(200):
        entries = entries_for(rng, rng.randint(1, 40))
        blob = b"junk\n" + "".join(f"{c}\t{p}\n" for c, p in entries).encode() + b"9\t/tail\n"
        lo, hi = 5, len(blob) - len("9\t/tail\n")
        rows = sorted({(path_key(b"site.example", p), c) for c, p in entries}
                      | {(k, PREFIX_ONLY) for _c, p in entries for k in prefix_rows(b"site.example", p)})
        keys, cids = [k for k, _ in rows], [c for _, c in rows]
        for _ in range(20):
            prefix = random_path(rng).lower()
            expected = sorted(c for c, p in entries if path_matches(prefix, p))
            assert sorted(matching_ids(blob, lo, hi, prefix)) == expected, (prefix, entries)
            assert sorted(scanned_ids(blob, lo, hi, prefix)) == expected, (prefix, entries)
            assert sorted(hashed_ids(b"site.example", prefix, keys, cids)) == expected
            assert hashed_ids(b"other.example", prefix, keys, cids) == [] or not expected


def test_index_with_many_entries_per_host(tmp_path: Path) -> None:
    """A host whose lines pass SMALL_BLOB takes the hashed table; old files (no table) use find."""
    rng = random.Random(3)
    lists = CategoryLists("test")
    big = [f"docs.example.com/document/d/{rng.randrange(10**9)}/edit" for _ in range(300)]
    lists.add_urls("shared", big)
    lists.add_urls("child", ["small.example/kids/", "docs.example.com/document/d/42"])
    lists.add_domains("games", ["docs.example.com"])
    compile_index([lists], tmp_path / "idx")
    with CategoryIndex.open(tmp_path / "idx") as index:
        assert sum(len(p) for _c, p in url_entries(index, "docs.example.com")) > SMALL_BLOB
        cases = {
            f"https://docs.example.com{big[7].split('.com', 1)[1]}?usp=sharing": {"games", "shared"},
            "https://docs.example.com/document/d/42/edit": {"games", "child"},
            "https://docs.example.com/document/d/421": {"games"},
            "https://www.docs.example.com/DOCUMENT/d/42": {"games", "child"},
            "http://small.example/kids/page": {"child"},
            "http://small.example/kid": set(),
        }
        for url, expected in cases.items():
            assert index.lookup_url(normalise_url(url)) == expected, url
    # The same file without the url_paths sections (as written before they existed).
    data = bytearray((tmp_path / "idx").read_bytes())
    data[32 + 16 * 8: 32 + 16 * 10] = bytes(32)
    (tmp_path / "old").write_bytes(bytes(data))
    with CategoryIndex.open(tmp_path / "old") as old:
        for url, expected in cases.items():
            assert old.lookup_url(normalise_url(url)) == expected, url
