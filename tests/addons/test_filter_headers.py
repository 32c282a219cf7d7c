"""Header reads on the request path: Filter gives the engine the headers only when they can matter (a value
mentions "dns"), and `header()` reads one header in one pass, with the value mitmproxy would give."""
from __future__ import annotations

import datetime as dt
import random

import pytest
from mitmproxy import http

from addons.filter import _doh_headers
from addons.runtimeref import header
from config.loader import DEFAULT_CONFIG, load_settings
from proxy.engine import Engine
from proxy.policy import Identity

AT = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
PUPIL = Identity(client_ip="10.20.2.5", known=True, group="ks2", role="pupil")
BROWSER = [("Host", "example.org"), ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Firefox/130.0"),
           ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"), ("Accept-Language", "en-GB,en;q=0.5"),
           ("Accept-Encoding", "gzip, deflate"), ("Sec-Fetch-Dest", "document"), ("Connection", "keep-alive")]
DNS_VALUES = [("Accept", "application/dns-message"), ("content-type", "Application/DNS-JSON"),
              ("ACCEPT", "application/dns-udpwireformat"), ("X-Note", "dns"), ("Content-Type", "text/dns-ish"),
              ("Referer", "http://example.org/DNS")]


def headers(pairs: list[tuple[str, str]]) -> http.Headers:
    return http.Headers([(k.encode(), v.encode()) for k, v in pairs])


def test_no_value_mentions_dns_so_no_headers() -> None:
    assert dict(_doh_headers(headers(BROWSER))) == {}


@pytest.mark.parametrize("extra", DNS_VALUES)
def test_a_value_mentioning_dns_passes_them_all(extra: tuple[str, str]) -> None:
    h = headers([*BROWSER, extra])
    assert _doh_headers(h) is h


def test_the_engine_decides_the_same_with_the_full_headers_or_the_filtered_ones() -> None:
    engine = Engine(load_settings(DEFAULT_CONFIG))
    rnd = random.Random(5)
    rules = set()
    for _ in range(400):
        pairs = rnd.sample(BROWSER, rnd.randrange(0, len(BROWSER) + 1))
        pairs += rnd.sample(DNS_VALUES, rnd.choice([0, 0, 0, 1, 2]))
        rnd.shuffle(pairs)
        url = rnd.choice(["http://example.org/", "https://dns.example/resolve?name=x", "http://x.test/dns-query"])
        h = headers(pairs)
        full = engine.evaluate(PUPIL, url, at=AT, headers=h)
        filtered = engine.evaluate(PUPIL, url, at=AT, headers=_doh_headers(h))
        assert full == filtered and full.decision.reason == filtered.decision.reason
        rules.add(full.decision.rule)
    assert {"allow", "circumvention.doh_shape"} <= rules


def test_header_reads_what_mitmproxy_get_reads() -> None:
    rnd = random.Random(11)
    names = ["Host", "host", "Sec-Fetch-Dest", "SEC-FETCH-DEST", "Content-Type", "X-Other"]
    values = ["document", "", "text/html; charset=utf-8", "caf\u00e9", "a, b"]
    for _ in range(300):
        pairs = [(rnd.choice(names).encode(), rnd.choice(values).encode()) for _ in range(rnd.randrange(0, 6))]
        pairs.append((b"X-Raw", b"\xff\xfe"))    # not UTF-8: decoded the way mitmproxy does
        h = http.Headers(pairs)
        for name in ("host", "sec-fetch-dest", "content-type", "x-raw", "absent"):
            assert header(h, name.encode()) == h.get(name, ""), (pairs, name)
