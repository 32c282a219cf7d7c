from __future__ import annotations

import os
from pathlib import Path

import pytest

from categories.compiler import compile_index
from categories.curated import load_builtin
from categories.errors import IndexFormatError
from categories.index import CategoryIndex
from categories.lists import CategoryLists
from categories.live import LiveIndex
from categories.normalise import normalise_url


def small_lists() -> list[CategoryLists]:
    a = CategoryLists("test")
    a.add_domains("games", ["example.com", "www.fun.example", "10.1.2.3", "zip"])
    a.add_domains("social", ["example.com", "chat.example.org"])
    a.add_urls("child", ["bbc.co.uk/cbeebies", "www.portal.example/kids/"])
    a.add_expressions("adverts", ["(/banner/|/sponsor/)", ".*/ymsgr*\\.exe", "([bad"])
    a.aliases["play"] = "games"
    iwf = CategoryLists("iwf", illegal=True)
    iwf.add_domains("iwf", ["abuse.example.net"])
    return [a, iwf]


@pytest.fixture
def index(tmp_path: Path) -> CategoryIndex:
    path = tmp_path / "idx"
    compile_index(small_lists(), path)
    with CategoryIndex.open(path) as ix:
        yield ix


def test_label_boundaries(index: CategoryIndex) -> None:
    assert index.lookup_host("example.com") == {"games", "social"}
    assert index.lookup_host("www.example.com") == {"games", "social"}
    assert index.lookup_host("a.b.example.com") == {"games", "social"}
    assert index.lookup_host("badexample.com") == frozenset()
    assert index.lookup_host("example.com.evil.net") == frozenset()
    assert index.lookup_host("com") == frozenset()
    assert index.lookup_host("") == frozenset()


def test_union_over_suffixes_and_www_entries(index: CategoryIndex) -> None:
    assert index.lookup_host("chat.example.org") == {"social"}
    assert index.lookup_host("example.org") == frozenset()
    # "www.fun.example" lists fun.example itself, not its other subdomains
    assert index.lookup_host("fun.example") == {"games"}
    assert index.lookup_host("www.fun.example") == {"games"}
    assert index.lookup_host("img.www.fun.example") == {"games"}
    assert index.lookup_host("other.fun.example") == frozenset()


def test_ip_and_single_label_entries(index: CategoryIndex) -> None:
    assert index.lookup_host("10.1.2.3") == {"games"}
    assert index.lookup_host("1.2.3") == frozenset()
    assert index.lookup_host("zip") == {"games"}
    assert index.lookup_host("evil.zip") == {"games"}


def test_url_entries(index: CategoryIndex) -> None:
    def cats(url: str) -> frozenset[str]:
        return index.lookup_url(normalise_url(url))

    assert cats("https://www.bbc.co.uk/cbeebies") == {"child"}
    assert cats("https://www.bbc.co.uk/cbeebies/games?x=1") == {"child"}
    assert cats("https://www.bbc.co.uk/CBeebies/") == {"child"}
    assert cats("https://www.bbc.co.uk/cbeebiesfake") == frozenset()
    assert cats("https://www.bbc.co.uk/news") == frozenset()
    assert cats("http://portal.example/kids/page") == {"child"}
    assert cats("http://portal.example/kidsx") == frozenset()
    assert cats("http://example.com/") == {"games", "social"}
    assert cats("http://[::1]/") == frozenset()
    assert cats("http://a..b/") == frozenset()


def test_expressions(index: CategoryIndex) -> None:
    assert index.lookup_url(normalise_url("http://x.org/a/banner/b.gif")) == {"adverts"}
    assert index.lookup_url(normalise_url("http://x.org/A/SPONSOR/b")) == {"adverts"}
    assert index.lookup_url(normalise_url("http://x.org/dl/ymsgr.exe")) == {"adverts"}
    assert index.lookup_url(normalise_url("http://x.org/bannerless")) == frozenset()
    assert any("([bad" in p for p in index.meta["problems"])


def test_explain(index: CategoryIndex) -> None:
    matched = index.explain_url(normalise_url("http://www.bbc.co.uk/cbeebies/x"))
    assert matched == [{"entry": "bbc.co.uk/cbeebies", "list": "urls", "category": "child"}]
    matched = index.explain_url(normalise_url("http://fun.example/banner/"))
    assert {"entry": "www.fun.example", "list": "domains", "category": "games"} in matched
    assert {"entry": "(/banner/|/sponsor/)", "list": "expressions", "category": "adverts"} in matched


def test_metadata(index: CategoryIndex) -> None:
    assert set(index.categories) == {"games", "social", "child", "adverts", "iwf"}
    assert index.aliases == {"play": "games"}
    assert index.illegal == {"iwf"}
    assert index.lookup_host("x.abuse.example.net") == {"iwf"}
    assert index.meta["format"] == 1
    sources = {s["name"]: s for s in index.meta["sources"]}
    assert sources["iwf"]["illegal"] and sources["test"]["counts"]["games"] == 4
    assert index.meta["category_counts"]["social"] == 2


def test_builtin_lists_alone(tmp_path: Path) -> None:
    builtin = load_builtin()
    for category in ("searchengines", "doh", "vpn", "redirector", "social_networks", "child",
                     "educational_games"):
        assert 25 <= builtin.counts[category] <= 150, category
    assert builtin.skipped == 0, builtin.problems
    compile_index([builtin], tmp_path / "idx")
    with CategoryIndex.open(tmp_path / "idx") as ix:
        assert "doh" in ix.lookup_host("mozilla.cloudflare-dns.com")
        assert "vpn" in ix.lookup_host("www.nordvpn.com")
        assert "child" in ix.lookup_url(normalise_url("https://www.bbc.co.uk/bitesize/topics"))
        assert "child" not in ix.lookup_url(normalise_url("https://www.bbc.co.uk/sport"))
        assert "searchengines" in ix.lookup_host("www.google.co.uk")


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(IndexFormatError, match="no category index"):
        CategoryIndex.open(tmp_path / "missing")
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(IndexFormatError):
        CategoryIndex.open(tmp_path / "empty")
    (tmp_path / "junk").write_bytes(b"x" * 1000)
    with pytest.raises(IndexFormatError, match="bad magic"):
        CategoryIndex.open(tmp_path / "junk")
    compile_index(small_lists(), tmp_path / "good")
    data = (tmp_path / "good").read_bytes()
    (tmp_path / "cut").write_bytes(data[: len(data) - 100])
    with pytest.raises(IndexFormatError, match="truncated"):
        CategoryIndex.open(tmp_path / "cut")


def test_compile_is_atomic_and_leaves_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    compile_index(small_lists(), path)
    first = os.stat(path).st_ino
    with CategoryIndex.open(path) as old:
        compile_index([load_builtin()], path)
        assert os.stat(path).st_ino != first
        assert old.lookup_host("example.com") == {"games", "social"}  # old mapping still good
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]


def test_live_index_follows_replacement(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    compile_index(small_lists(), path)
    now = [100.0]
    live = LiveIndex(path, check_interval=1.0, clock=lambda: now[0])
    assert live.current.lookup_host("example.com") == {"games", "social"}
    compile_index([load_builtin()], path)
    assert live.current.lookup_host("example.com") == {"games", "social"}  # not checked yet
    now[0] += 1.5
    assert live.current.lookup_host("example.com") == frozenset()
    assert "vpn" in live.current.lookup_host("nordvpn.com") and live.reloads == 1
    (tmp_path / "new").write_bytes(b"garbage")  # a broken file: keep the last good index
    os.replace(tmp_path / "new", path)
    now[0] += 1.5
    assert "vpn" in live.current.lookup_host("nordvpn.com")
    live.close()


def test_a_replaced_index_is_closed_a_minute_later_and_freed_without_the_garbage_collector(tmp_path: Path) -> None:
    """`schoolgate run` keeps its start-up objects out of garbage collections (`proxy.heap`): the index it
    opened at start-up must go by its reference count alone once a list update has replaced it."""
    import gc
    import weakref

    from categories.live import RETIRE_AFTER_S

    path = tmp_path / "idx"
    compile_index(small_lists(), path)
    now = [100.0]
    live = LiveIndex(path, check_interval=1.0, clock=lambda: now[0])
    first = live.current
    urls = ("http://www.fun.example/", "http://10.1.2.3/x", "http://bbc.co.uk/cbeebies/a", "http://a.zip/")
    for url in urls:
        assert first.lookup_url(normalise_url(url))  # every path through the checks: names, IPs, URL entries, TLDs
    gone = weakref.ref(first)
    gc.disable()
    try:
        compile_index([load_builtin()], path)
        now[0] += 1.5
        assert "vpn" in live.current.lookup_host("nordvpn.com") and live.reloads == 1
        assert first.lookup_url(normalise_url(urls[0])) == {"games"}  # a lookup still holding it: served
        del first
        now[0] += RETIRE_AFTER_S - 1
        assert live.current.lookup_host("nordvpn.com")
        assert gone() is not None                    # not yet a minute
        now[0] += 1.5
        assert "vpn" in live.current.lookup_host("nordvpn.com")
        assert gone() is None                        # closed, and freed by its reference count
    finally:
        gc.enable()
        live.close()


def test_a_closed_index_says_so(tmp_path: Path) -> None:
    path = tmp_path / "idx"
    compile_index([load_builtin()], path)
    index = CategoryIndex.open(path)
    index.close()
    for call in (lambda: index.lookup_url(normalise_url("http://nordvpn.com/")),
                 lambda: index.check_url("http://nordvpn.com/"), lambda: index.lookup_host("nordvpn.com")):
        with pytest.raises(ValueError):
            call()
