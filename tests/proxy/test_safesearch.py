"""Unit tests of proxy/safesearch.py (pure)."""
from __future__ import annotations

import pytest

from proxy.safesearch import (
    Rewrite,
    is_search_engine_host,
    safesearch_dns_target,
    safesearch_rewrite,
)


def rw(host: str, path: str = "/search", query: list[tuple[str, str]] | None = None,
       headers: dict[str, str] | None = None, youtube_mode: str = "strict") -> Rewrite | None:
    return safesearch_rewrite("https", host, path, query if query is not None else [("q", "cats")],
                              headers or {}, youtube_mode)


@pytest.mark.parametrize("host,engine", [
    ("google.com", "google"), ("www.google.com", "google"), ("www.google.co.uk", "google"),
    ("google.de", "google"), ("www.google.de", "google"), ("www.google.com.au", "google"),
    ("google.com.br", "google"), ("www.google.co.jp", "google"), ("WWW.GOOGLE.FR.", "google"),
    ("www.google.com:443", "google"),
    ("bing.com", "bing"), ("www.bing.com", "bing"), ("strict.bing.com", "bing"),
    ("duckduckgo.com", "duckduckgo"), ("html.duckduckgo.com", "duckduckgo"),
    ("search.yahoo.com", "yahoo"), ("uk.search.yahoo.com", "yahoo"),
    ("images.search.yahoo.com", "yahoo"),
    ("www.ecosia.org", "ecosia"), ("ecosia.org", "ecosia"),
    ("youtube.com", "youtube"), ("www.youtube.com", "youtube"), ("m.youtube.com", "youtube"),
    ("youtubei.googleapis.com", "youtube"), ("youtube.googleapis.com", "youtube"),
    ("www.youtube-nocookie.com", "youtube"),
])
def test_search_engine_hosts(host: str, engine: str) -> None:
    assert is_search_engine_host(host) == engine


@pytest.mark.parametrize("host", [
    "mail.google.com", "docs.google.com", "googleapis.com", "fonts.googleapis.com",
    "google.evil.example", "notgoogle.com", "www.google.co.uk.evil.example", "bbc.co.uk",
    "yahoo.com", "mail.yahoo.com", "ecosia.org.example", "myyoutube.com", "10.0.0.1", "[::1]",
    "",
])
def test_not_search_engine_hosts(host: str) -> None:
    assert is_search_engine_host(host) is None
    assert rw(host) is None


@pytest.mark.parametrize("host", ["www.google.com", "www.google.co.uk", "google.de",
                                  "www.google.com.au"])
def test_google_gets_safe_active(host: str) -> None:
    r = rw(host, "/search", [("q", "cats"), ("safe", "off")])
    assert r is not None and r.engine == "google"
    assert r.query_set == {"safe": "active"}
    assert r.apply_query([("q", "cats"), ("safe", "off")]) == [("q", "cats"), ("safe", "active")]


def test_google_image_and_home_search() -> None:
    assert rw("www.google.com", "/images", [("q", "x")]) is not None
    assert rw("www.google.com", "/", [("q", "x")]) is not None
    assert rw("www.google.com", "/search?q=x&tbm=isch", [("q", "x")]) is not None
    assert rw("www.google.com", "/complete/search", [("q", "x")]) is not None


def test_google_non_search_paths_untouched() -> None:
    assert rw("www.google.com", "/gen_204", []) is None
    assert rw("www.google.com", "/", []) is None
    assert rw("www.google.com", "/maps", [("q", "x")]) is None


def test_google_already_safe() -> None:
    assert rw("www.google.com", "/search", [("q", "x"), ("safe", "active")]) is None
    assert rw("www.google.com", "/search", [("q", "x"), ("safe", "ACTIVE")]) is None
    # one occurrence not safe: rewrite all of them
    r = rw("www.google.com", "/search", [("safe", "active"), ("q", "x"), ("safe", "off")])
    assert r is not None and r.query_set == {"safe": "active"}


def test_bing() -> None:
    r = rw("www.bing.com", "/search", [("q", "x")])
    assert r == Rewrite("bing", query_set={"adlt": "strict"})
    assert rw("www.bing.com", "/images/search", [("q", "x"), ("adlt", "off")]) is not None
    assert rw("www.bing.com", "/search", [("q", "x"), ("adlt", "strict")]) is None
    assert rw("strict.bing.com", "/search", [("q", "x")]) is None  # the strict host is safe
    assert rw("www.bing.com", "/fd/ls/l", []) is None


def test_duckduckgo() -> None:
    assert rw("duckduckgo.com", "/", [("q", "x")]) == Rewrite("duckduckgo", query_set={"kp": "1"})
    assert rw("html.duckduckgo.com", "/html/", [("q", "x"), ("kp", "-2")]) is not None
    assert rw("duckduckgo.com", "/", [("q", "x"), ("kp", "1")]) is None
    assert rw("duckduckgo.com", "/", []) is None
    assert rw("safe.duckduckgo.com", "/", [("q", "x")]) is None


def test_yahoo() -> None:
    assert rw("search.yahoo.com", "/search", [("p", "x")]) == Rewrite("yahoo",
                                                                    query_set={"vm": "r"})
    assert rw("uk.search.yahoo.com", "/search;_ylt=AwrE", [("p", "x")]) is not None
    assert rw("search.yahoo.com", "/search", [("p", "x"), ("vm", "r")]) is None


def test_ecosia_sets_strict_in_settings_cookie() -> None:
    r = rw("www.ecosia.org", "/search", [("q", "x")])
    assert r is not None and r.headers_set == {"Cookie": "ECFG=f=y"}
    r = rw("www.ecosia.org", "/search", [("q", "x")],
           {"cookie": "a=1; ECFG=a=0:f=n:l=en; b=2"})
    assert r is not None
    assert r.headers_set == {"Cookie": "a=1; ECFG=a=0:l=en:f=y; b=2"}
    assert rw("www.ecosia.org", "/search", [("q", "x")], {"Cookie": "ECFG=a=0:f=y:l=en"}) is None
    assert rw("www.ecosia.org", "/", []) is None


@pytest.mark.parametrize("host", ["www.youtube.com", "m.youtube.com", "youtubei.googleapis.com",
                                  "youtube.googleapis.com", "www.youtube-nocookie.com"])
def test_youtube_header(host: str) -> None:
    r = rw(host, "/watch", [("v", "abc")], youtube_mode="strict")
    assert r == Rewrite("youtube", headers_set={"YouTube-Restrict": "Strict"})
    r = rw(host, "/youtubei/v1/search", [], youtube_mode="moderate")
    assert r == Rewrite("youtube", headers_set={"YouTube-Restrict": "Moderate"})
    assert rw(host, "/watch", [], youtube_mode="off") is None


def test_youtube_already_restricted_or_weaker() -> None:
    assert rw("www.youtube.com", "/", [], {"youtube-restrict": "strict"}) is None
    assert rw("www.youtube.com", "/", [], {"YouTube-Restrict": "Moderate"},
              youtube_mode="moderate") is None
    # a client asking for less than the school wants is overruled
    r = rw("www.youtube.com", "/", [], {"YouTube-Restrict": "Moderate"}, youtube_mode="strict")
    assert r is not None and r.headers_set["YouTube-Restrict"] == "Strict"


def test_youtube_bad_mode() -> None:
    with pytest.raises(ValueError):
        rw("www.youtube.com", "/", [], youtube_mode="loose")


def test_dns_targets() -> None:
    assert safesearch_dns_target("www.google.co.uk") == "forcesafesearch.google.com"
    assert safesearch_dns_target("www.bing.com") == "strict.bing.com"
    assert safesearch_dns_target("strict.bing.com") is None
    assert safesearch_dns_target("duckduckgo.com") == "safe.duckduckgo.com"
    assert safesearch_dns_target("www.youtube.com", "strict") == "restrict.youtube.com"
    assert safesearch_dns_target("m.youtube.com", "moderate") == "restrictmoderate.youtube.com"
    assert safesearch_dns_target("www.youtube.com", "off") is None
    assert safesearch_dns_target("example.com") is None
