"""The fused URL check (`CategoryIndex.check_url`) against the two-step path and the slow explain path."""
from __future__ import annotations

import random
import tarfile
from pathlib import Path

import pytest

from categories import hostprobe
from categories.compiler import compile_index
from categories.index import CategoryIndex
from categories.lists import CategoryLists
from categories.normalise import normalise_url

from .conftest import need_ut1


def explained(index: CategoryIndex, url: str) -> set[str]:
    """The slow reference: every entry that matched, one probe per suffix, every pattern run."""
    return {e["category"] for e in index.explain_url(normalise_url(url))}


def assert_same(index: CategoryIndex, urls: list[str]) -> int:
    """check_url == lookup_url(normalise_url()) == explain; returns how many URLs had a category.

    Explain runs every pattern with IGNORECASE, which also folds a few non-ASCII letters
    (`ſ` matches `s`); the lookups look for the keys in the lower-cased target (`ſ` stays),
    as they always did: the slow reference is compared on ASCII URLs (browsers send those).
    """
    hits = 0
    for url in urls:
        fused = index.check_url(url)
        assert fused == index.lookup_url(normalise_url(url)), url
        if url.isascii():
            assert fused == explained(index, url), url
        assert isinstance(fused, frozenset)
        hits += bool(fused)
    return hits


def many_lists() -> list[CategoryLists]:
    lists = CategoryLists("test")
    lists.add_domains("games", ["example.com", "www.fun.example", "10.1.2.3", "zip", "co.uk"])
    lists.add_domains("social", ["example.com", "chat.example.org", "a-b.example.net"])
    lists.add_urls("child", ["bbc.co.uk/cbeebies", "www.portal.example/kids/", "10.1.2.3/admin",
                             "example.com/play?id=1", "shop.zip/cart"])
    lists.add_urls("shared", [f"docs.example.com/d/{i}/edit" for i in range(60)])
    lists.add_expressions("adverts", ["(/banner/|/sponsor/|adverts/)", ".*/ymsgr*\\.exe",
                                      "^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+/search\\?q=[0-9]+$",
                                      "(google\\..*/search\\?q=cache)|(bing\\.com/videos/search)"])
    return [lists]


SCHEMES = ["http://", "https://", "HTTPS://", "Http://", "", "ftp://", "//"]
HOSTS = ["example.com", "www.example.com", "a.b.example.com", "badexample.com", "fun.example",
         "www.fun.example", "other.fun.example", "chat.example.org", "bbc.co.uk", "www.bbc.co.uk",
         "portal.example", "docs.example.com", "10.1.2.3", "1.2.3.4", "[::1]", "zip", "evil.zip",
         "shop.zip", "WWW.Example.COM", "example.com.", "a..b", "bücher.de", "x" * 64 + ".com",
         "google.fr", "bing.com", "a-b.example.net", "_x.example.com", "user@example.com"]
TAILS = ["", "/", "/cbeebies", "/CBeebies/x", "/kids/", "/kids", "/banner/", "/A/SPONSOR/b", "/adverts/",
         "/search?q=123", "/search?q=cache", "/videos/search", "/dl/ymsgr.exe", "/play?id=1", "/play?id=12",
         "/d/7/edit", "/d/7/edit?usp=sharing", "/d/77/edit", "/cart", "/admin", "/a/./b", "/a/../kids/",
         "/%7Euser", "/a b", "/a\tb", "?q=1", "#frag", ":8080/", ":99999/", "/İ/banner/", "/ſponsor/",
         "/x?y#z", "\\banner\\"]


def generated(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(SCHEMES) + rng.choice(HOSTS) + "".join(rng.choice(TAILS) for _ in range(rng.randint(0, 3)))
            for _ in range(n)]


@pytest.fixture(params=["C", "Python"])
def implementation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The host loop in C (where it was built) and in Python: every check must agree with both."""
    if request.param == "C" and hostprobe._CHostTable is None:
        pytest.skip("categories._hostprobe was not built (no C compiler)")
    monkeypatch.setattr(hostprobe, "IMPLEMENTATION", request.param)
    return str(request.param)


@pytest.fixture
def small(tmp_path: Path, implementation: str) -> CategoryIndex:
    compile_index(many_lists(), tmp_path / "idx")
    with CategoryIndex.open(tmp_path / "idx") as index:
        yield index


def test_examples(small: CategoryIndex) -> None:
    assert small.check_url("https://www.example.com/") == {"games", "social"}
    assert small.check_url("https://www.bbc.co.uk/cbeebies/x?y=1") == {"games", "child"}  # co.uk is listed
    assert small.check_url("https://docs.example.com/d/7/edit?usp=sharing") == {"games", "social", "shared"}
    assert small.check_url("http://x.org/A/BANNER/b") == {"adverts"}
    assert small.check_url("http://1.2.3.4/search?q=12") == {"adverts"}
    assert small.check_url("http://x.org/search?q=12") == frozenset()
    assert small.check_url("http://[::1]/banner/") == {"adverts"}
    assert small.check_url("http://a..b/") == frozenset()
    assert small.check_url("http://example.com:99999/") == frozenset()  # a bad port: invalid
    assert small.check_url("not a url at all") == frozenset()


def test_generated_urls_agree_with_both_slow_paths(small: CategoryIndex) -> None:
    urls = generated(random.Random(21), 6000)
    assert assert_same(small, urls) > 1500


def test_closed_index_refuses(tmp_path: Path) -> None:
    compile_index(many_lists(), tmp_path / "idx")
    index = CategoryIndex.open(tmp_path / "idx")
    check = index.check_url
    assert check("http://example.com/") == {"games", "social"}
    index.close()
    with pytest.raises(ValueError):
        check("http://example.com/")


def test_real_ut1_urls_agree(real_index: Path, implementation: str) -> None:
    """Listed names, their subdomains, real `urls` entries, expression pieces, on the real lists."""
    rng = random.Random(22)
    names: list[str] = []
    entries: list[str] = []
    with tarfile.open(need_ut1()) as tar:
        for member in tar.getmembers():
            leaf = member.name.rsplit("/", 1)[-1]
            if member.isreg() and leaf in ("domains", "urls") and rng.random() < 0.3:
                handle = tar.extractfile(member)
                assert handle is not None
                lines = handle.read().decode("utf-8", "replace").split()
                (names if leaf == "domains" else entries).extend(rng.sample(lines, min(200, len(lines))))
    paths = ["/", "/index.html", "/search?q=volcanoes", "/images/banner/ad.gif", "/videos/search?q=x",
             "/Advertisement/x", "/search?q=cache:x", "/images?q=tbn:1", "/ymsgr.exe", "/event.ng/x"]
    urls = ([f"https://{rng.choice(['', 'www.', 'cdn.'])}{name}{rng.choice(paths)}" for name in names]
            + [f"http://{entry}" for entry in entries]
            + [f"http://{entry.upper()}?x=1" for entry in entries[::5]]
            + [f"https://google.com{p}" for p in paths] + [f"http://8.8.8.8{p}" for p in paths])
    with CategoryIndex.open(real_index) as index:
        assert assert_same(index, urls) > len(urls) // 3
