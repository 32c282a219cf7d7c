"""Unit tests of proxy/circumvention.py (pure)."""
from __future__ import annotations

import pytest

from proxy.circumvention import CIRCUMVENTION_CATEGORIES, Circumvention, detect_circumvention

NONE: frozenset[str] = frozenset()


def detect(host: str = "example.org", path: str = "/", query: list[tuple[str, str]] | None = None,
           headers: dict[str, str] | None = None, categories: frozenset[str] = NONE,
           method: str = "GET", port: int = 443, is_pupil: bool = True) -> Circumvention | None:
    return detect_circumvention(method, host, port, path, query or [], headers or {}, categories,
                                is_pupil)


def rule(**kw: object) -> str | None:
    hit = detect(**kw)  # type: ignore[arg-type]
    return None if hit is None else hit.rule


@pytest.mark.parametrize("category,expected", [
    ("vpn", "circumvention.category_vpn"),
    ("doh", "circumvention.category_doh"),
    ("redirector", "circumvention.category_redirector"),
    ("strict_redirector", "circumvention.category_strict_redirector"),
    ("residential-proxies", "circumvention.category_residential_proxies"),
])
def test_categories(category: str, expected: str) -> None:
    hit = detect("nordvpn.example", categories=frozenset({category, "news"}))
    assert hit is not None
    assert hit.rule == expected and hit.category == category
    assert hit.reason and "filter" in hit.reason
    # also for staff, and also for CONNECT
    assert rule(host="x.example", categories=frozenset({category}), is_pupil=False) == expected
    assert rule(host="x.example", categories=frozenset({category}), method="CONNECT") == expected


def test_every_category_has_a_distinct_rule() -> None:
    rules = {rule(categories=frozenset({c})) for c in CIRCUMVENTION_CATEGORIES}
    assert len(rules) == len(CIRCUMVENTION_CATEGORIES)


def test_other_categories_are_not_circumvention() -> None:
    assert detect("games.example", categories=frozenset({"games", "social_networks"})) is None


@pytest.mark.parametrize("kw", [
    {"headers": {"Content-Type": "application/dns-message"}, "method": "POST"},
    {"headers": {"accept": "application/dns-message"}},
    {"headers": {"Accept": "application/dns-json"}},
    {"headers": {"Content-Type": "Application/DNS-Message"}, "method": "POST"},
    {"headers": {"ACCEPT": "text/html, application/dns-json;q=0.9"}},
    {"path": "/dns-query", "query": [("dns", "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB")]},
    {"path": "/dns-query"},
    {"path": "/resolve", "query": [("name", "example.com"), ("type", "A")]},
    {"path": "/resolve?name=example.com", "query": [("name", "example.com")]},
    {"path": "/custom/dns-query", "query": [("dns", "AAAB")]},
])
def test_doh_by_shape(kw: dict[str, object]) -> None:
    hit = detect(host="unknown-resolver.example", **kw)  # type: ignore[arg-type]
    assert hit is not None and hit.rule == "circumvention.doh_shape" and hit.category == "doh"


@pytest.mark.parametrize("kw", [
    {"path": "/resolve"},                                  # no name=
    {"path": "/dns-queries"},
    {"headers": {"Accept": "application/json"}},
    {"path": "/search", "query": [("name", "bob")]},
])
def test_not_doh(kw: dict[str, object]) -> None:
    assert detect(host="api.example", **kw) is None  # type: ignore[arg-type]


def test_connect_ports() -> None:
    assert rule(method="CONNECT", port=443) is None
    assert rule(method="CONNECT", port=1194) == "circumvention.connect_port"
    assert rule(method="CONNECT", port=22) == "circumvention.connect_port"
    assert rule(method="CONNECT", port=80) == "circumvention.connect_port"
    assert rule(method="CONNECT", port=8443, is_pupil=False) is None
    hit = detect(method="CONNECT", port=1194)
    assert hit is not None and "1194" in hit.reason


@pytest.mark.parametrize("host,path,query", [
    ("www-youtube-com.translate.goog", "/watch", [("v", "x"), ("_x_tr_sl", "auto")]),
    ("translate.google.com", "/translate", [("u", "https://www.reddit.com/")]),
    ("translate.google.co.uk", "/translate", [("sl", "fr"), ("u", "reddit.com")]),
    ("translate.googleusercontent.com", "/translate_c", [("u", "https://x.example/")]),
])
def test_translate_proxy(host: str, path: str, query: list[tuple[str, str]]) -> None:
    assert rule(host=host, path=path, query=query) == "circumvention.translate_proxy"


def test_translate_itself_is_fine() -> None:
    assert rule(host="translate.google.com", path="/", query=[("sl", "en"), ("text", "hello")]) \
        is None
    assert rule(host="translate.google.com", path="/translate", query=[("text", "hi")]) is None
    assert rule(host="www-bbc-co-uk.translate.goog", method="CONNECT", port=443) == \
        "circumvention.translate_proxy"


@pytest.mark.parametrize("path,query", [
    ("/browse.php", [("u", "Oi8vd3d3LnJlZGRpdC5jb20"), ("b", "4")]),
    ("/proxy", [("url", "https://reddit.com")]),
    ("/proxy/", [("url", "reddit.com")]),
    ("/cgi-bin/nph-proxy.cgi/010110A/https/www.reddit.com/", []),
    ("/index.php", [("q", "aHR0cHM6Ly93d3cucmVkZGl0LmNvbQ")]),
])
def test_web_proxy_paths(path: str, query: list[tuple[str, str]]) -> None:
    # even on a host the index files under an innocent category
    assert rule(host="free-unblock.example", path=path, query=query,
                categories=frozenset({"news"})) == "circumvention.web_proxy"


@pytest.mark.parametrize("key,value", [
    ("u", "http://www.reddit.com/"), ("url", "https://discord.com/app"),
    ("q", "https%3A%2F%2Fwww.tiktok.com"), ("URL", "www.tiktok.com/@x"),
    ("url", "http%3a//x.example"),
])
def test_url_wrapper_on_unknown_hosts(key: str, value: str) -> None:
    assert rule(host="unblocked-games-77.example", path="/go", query=[(key, value)]) == \
        "circumvention.url_wrapper"


def test_url_wrapper_not_on_known_or_search_hosts() -> None:
    q = [("url", "https://www.bbc.co.uk/news")]
    assert detect(host="www.facebook.com", query=q, categories=frozenset({"social_networks"})) \
        is None
    assert detect(host="www.google.com", path="/search", query=[("q", "https://bbc.co.uk")]) \
        is None
    assert detect(host="duckduckgo.com", query=[("q", "http://example.com")]) is None
    # parameters that merely mention a site, or other parameter names, are fine
    assert detect(host="x.example", query=[("q", "how to make http requests")]) is None
    assert detect(host="x.example", query=[("redirect_uri", "https://x.example/cb")]) is None
    assert detect(host="x.example", query=[("ref", "https://other.example/")]) is None


def test_ordinary_requests_pass() -> None:
    assert detect(host="www.bbc.co.uk", path="/bitesize", categories=frozenset({"educational"})) \
        is None
    assert detect(host="www.google.com", path="/search", query=[("q", "romans")]) is None
    assert detect(host="example.org", method="POST", path="/form",
                  headers={"Content-Type": "application/x-www-form-urlencoded"}) is None
