from __future__ import annotations

import json
from datetime import datetime, UTC
from pathlib import Path

import pytest

from categories import commands
from categories.compiler import compile_index
from categories.curated import load_builtin
from categories.lists import CategoryLists
from categories.taxonomy import UK_CATEGORIES, UK_CATEGORY, describe, uk_categories, uk_category
from categories.tuning import LocalEntry, LocalLists
from categories.ut1 import parse_global_usage

from .conftest import UT1, need_ut1

AT = datetime(2026, 1, 5, tzinfo=UTC)


def entry(domain: str, category: str, kind: str) -> LocalEntry:
    return LocalEntry(domain, category, kind, "test", "tech", AT)


def test_deny_adds_to_domain_and_subdomains() -> None:
    lists = LocalLists([entry("Example.COM", "games", "deny")])
    assert lists.apply("example.com", frozenset()) == {"games"}
    assert lists.apply("www.example.com", frozenset({"chat"})) == {"chat", "games"}
    assert lists.apply("badexample.com", frozenset()) == frozenset()


def test_allow_removes_one_or_every_category_but_never_illegal() -> None:
    lists = LocalLists([entry("site.example", "games", "allow"), entry("all.example", "*", "allow")])
    assert lists.apply("a.site.example", frozenset({"games", "chat"})) == {"chat"}
    assert lists.apply("all.example", frozenset({"games", "chat", "iwf"})) == {"iwf"}
    lists = LocalLists([entry("x.example", "iwf", "allow")])
    assert lists.apply("x.example", frozenset({"iwf", "ctiru"})) == {"iwf", "ctiru"}


def test_allow_type_categories_add_to_the_walled_garden() -> None:
    lists = LocalLists([entry("class-site.example", "child", "allow"),
                        entry("games.example", "educational_games", "deny")])
    assert lists.apply("www.class-site.example", frozenset()) == {"child"}
    assert lists.apply("games.example", frozenset({"educational_games", "games"})) == {"games"}


def test_more_specific_domain_wins() -> None:
    lists = LocalLists([entry("example.com", "*", "allow"), entry("play.example.com", "games", "deny")])
    assert lists.apply("play.example.com", frozenset({"games", "chat"})) == {"games"}
    assert lists.apply("www.example.com", frozenset({"games"})) == frozenset()


def test_bad_entries_are_refused() -> None:
    with pytest.raises(ValueError):
        LocalLists([entry("a..b", "games", "deny")])
    with pytest.raises(ValueError):
        LocalLists([entry("a.example", "games", "block")])
    with pytest.raises(ValueError):
        LocalLists([entry("a.example", "*", "deny")])


def test_taxonomy_covers_every_ut1_category() -> None:
    need_ut1()
    import tarfile
    with tarfile.open(UT1) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/global_usage"))
        handle = tar.extractfile(member)
        assert handle is not None
        names = parse_global_usage(handle.read())
    assert len(names) > 60
    missing = [n for n in names if n not in UK_CATEGORY]
    assert missing == []
    from categories import taxonomy
    assert [n for n in names if n not in taxonomy._WORDS] == []  # plain words for every one


def test_uk_mapping_and_words() -> None:
    assert uk_category("adult") == "pornography"
    assert uk_category("iwf") == uk_category("ctiru") == "illegal content"
    assert uk_category("warez") == "piracy and copyright theft"
    assert uk_category("games") is None
    assert set(UK_CATEGORY.values()) - {None} <= set(UK_CATEGORIES)
    assert uk_categories(["malware", "adult", "games", "phishing"]) == ["malware / hacking", "pornography"]
    assert describe("vpn") == "sites that hide where you are going"
    assert describe("adult") == "adult content"
    assert describe("something_new") == "something new"


@pytest.fixture
def small_index(tmp_path: Path) -> Path:
    lists = CategoryLists("t")
    lists.add_domains("games", ["play.example"])
    lists.add_urls("adult", ["host.example/bad"])
    compile_index([load_builtin(), lists], tmp_path / "idx")
    return tmp_path / "idx"


class Out:
    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_lookup_command(small_index: Path) -> None:
    out = Out()
    assert commands.lookup(small_index, "http://www.host.example/bad/x", True, out) == 0
    data = json.loads(out.text)
    assert data["host"] == "www.host.example" and data["kind"] == "name"
    assert data["categories"] == ["adult"] and data["uk_categories"] == ["pornography"]
    assert data["matched"] == [{"entry": "host.example/bad", "list": "urls", "category": "adult"}]
    out = Out()
    assert commands.lookup(small_index, "WWW.Play.Example:443", False, out) == 0
    assert "games (games)" in out.text and "domains entry play.example" in out.text
    out = Out()
    assert commands.lookup(small_index, "a..b", True, out) == 0
    assert json.loads(out.text)["kind"] == "invalid"
    assert commands.lookup(small_index, "  ", False, Out()) == 2
    assert commands.lookup(small_index.parent / "nope", "x.example", False, Out()) == 1


def test_stats_command(small_index: Path) -> None:
    out = Out()
    assert commands.stats(small_index, out) == 0
    assert "source builtin" in out.text and "games" in out.text
    assert "lookups in: C (categories._hostprobe, categories._fasturl)" in out.text or "lookups in: Python" in out.text
    assert commands.stats(small_index.parent / "nope", Out()) == 1


def test_update_command(tmp_path: Path) -> None:
    from categories.settings import CategorySettings, CategorySource
    feed = tmp_path / "extra.txt"
    feed.write_text("extra.example\n")
    settings = CategorySettings(sources=(CategorySource("extra", str(feed), "domains", "games"),))
    out = Out()
    assert commands.update(settings, tmp_path / "idx", out=out) == 0
    assert "extra: read, 1 entries" in out.text and "index rebuilt" in out.text
    out = Out()
    assert commands.update(settings, tmp_path / "idx", from_=str(tmp_path / "missing.tar.gz"),
                           out=out) == 1
    assert "update failed" in out.text
