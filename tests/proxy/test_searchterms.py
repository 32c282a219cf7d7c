"""Unit tests of proxy/searchterms.py (pure)."""
from __future__ import annotations

import pytest

from proxy.searchterms import MAX_TERM_LENGTH, SearchTerm, extract_search, keep_query


@pytest.mark.parametrize("host,path,query,expected", [
    ("www.google.com", "/search", [("q", "volcanoes for kids"), ("safe", "active")],
     SearchTerm("google", "volcanoes for kids")),
    ("www.google.co.uk", "/search?q=ignored", [("q", "romans")], SearchTerm("google", "romans")),
    ("google.de", "/search", [("tbm", "isch"), ("q", "tiger")], SearchTerm("google", "tiger")),
    ("www.bing.com", "/search", [("q", "how do bees fly")], SearchTerm("bing", "how do bees fly")),
    ("www.bing.com", "/images/search", [("q", "owl")], SearchTerm("bing", "owl")),
    ("duckduckgo.com", "/", [("q", "the moon"), ("kp", "1")], SearchTerm("duckduckgo", "the moon")),
    ("html.duckduckgo.com", "/html/", [("q", "mars")], SearchTerm("duckduckgo", "mars")),
    ("search.yahoo.com", "/search", [("p", "rivers")], SearchTerm("yahoo", "rivers")),
    ("uk.search.yahoo.com", "/search;_ylt=AwrE;_ylc=X1M", [("p", "castles")],
     SearchTerm("yahoo", "castles")),
    ("www.ecosia.org", "/search", [("q", "trees")], SearchTerm("ecosia", "trees")),
    ("www.ecosia.org", "/images", [("q", "leaf")], SearchTerm("ecosia", "leaf")),
    ("www.youtube.com", "/results", [("search_query", "times tables song")],
     SearchTerm("youtube", "times tables song")),
    ("m.youtube.com", "/results", [("search_query", "phonics")], SearchTerm("youtube", "phonics")),
    ("en.wikipedia.org", "/w/index.php", [("search", "Tudors"), ("title", "Special:Search")],
     SearchTerm("wikipedia", "Tudors")),
    ("en.m.wikipedia.org", "/wiki/Special:Search", [("search", "Vikings")],
     SearchTerm("wikipedia", "Vikings")),
    ("de.wikipedia.org", "/wiki/Special:Search/Gro%C3%9Fe_Pyramide", [],
     SearchTerm("wikipedia", "Große Pyramide")),
    ("en.wikipedia.org", "/wiki/Special%3ASearch", [("search", "Anglo-Saxons")],
     SearchTerm("wikipedia", "Anglo-Saxons")),
    ("WWW.GOOGLE.COM:443", "/search", [("q", "  lots   of\tspace  ")],
     SearchTerm("google", "lots of space")),
])
def test_extract(host: str, path: str, query: list[tuple[str, str]],
                 expected: SearchTerm) -> None:
    assert extract_search(host, path, query) == expected


@pytest.mark.parametrize("host,path,query", [
    ("www.google.com", "/maps", [("q", "london")]),          # not a search page
    ("www.google.com", "/search", []),                        # no term
    ("www.google.com", "/search", [("q", "   ")]),            # blank term
    ("www.google.com", "/complete/search", [("q", "partial")]),  # autocomplete keystrokes
    ("www.bing.com", "/search", [("p", "x")]),               # wrong parameter
    ("search.yahoo.com", "/search", [("q", "x")]),
    ("www.youtube.com", "/watch", [("v", "dQw4w9WgXcQ")]),
    ("www.youtube.com", "/results", [("q", "x")]),
    ("en.wikipedia.org", "/wiki/Tudors", [("search", "x")]),
    ("example.com", "/search", [("q", "x")]),                  # unknown host
    ("wikipedia.org.evil.example", "/w/index.php", [("search", "x")]),
    ("notwikipedia.org", "/w/index.php", [("search", "x")]),
    ("mail.google.com", "/search", [("q", "x")]),
])
def test_not_a_search(host: str, path: str, query: list[tuple[str, str]]) -> None:
    assert extract_search(host, path, query) is None


def test_first_value_wins_and_long_terms_are_cut() -> None:
    got = extract_search("www.google.com", "/search", [("q", "a"), ("q", "b")])
    assert got == SearchTerm("google", "a")
    got = extract_search("www.google.com", "/search", [("q", "x" * 1000)])
    assert got is not None and len(got.term) == MAX_TERM_LENGTH


@pytest.mark.parametrize("host,keep", [
    ("www.google.com", True), ("www.google.co.uk", True), ("www.bing.com", True),
    ("duckduckgo.com", True), ("search.yahoo.com", True), ("www.ecosia.org", True),
    ("www.youtube.com", True), ("en.wikipedia.org", True),
    ("www.bbc.co.uk", False), ("mail.google.com", False), ("login.example.com", False),
    ("10.20.0.5", False),
])
def test_keep_query(host: str, keep: bool) -> None:
    assert keep_query(host) is keep
