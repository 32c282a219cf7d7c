from __future__ import annotations

import pytest

from categories.normalise import NormalisedURL, normalise_host, normalise_url


def test_case_and_trailing_dot() -> None:
    u = normalise_url("HTTP://WWW.Example.COM./Path")
    assert (u.kind, u.scheme, u.host, u.port, u.path) == ("name", "http", "www.example.com", 80, "/Path")


def test_fast_path_equals_general_path() -> None:
    fast = normalise_url("https://www.example.com/some/path?q=1#frag")
    assert fast == NormalisedURL("name", "https", "www.example.com", 443, "/some/path", "q=1", "")
    assert normalise_url("https://WWW.example.com/some/path?q=1") == fast


def test_idn_to_punycode() -> None:
    assert normalise_url("http://bücher.de/").host == "xn--bcher-kva.de"
    assert normalise_host("BÜCHER.de").host == "xn--bcher-kva.de"
    assert normalise_url("http://☃.net/").host == "xn--n3h.net"


def test_bad_idn_is_invalid() -> None:
    assert normalise_url("http://a\u200b\u0000b.com/").kind == "invalid"


def test_percent_encoding_in_host_and_path() -> None:
    u = normalise_url("http://%65xample.com/%7Euser/a%2fb/c")
    assert u.host == "example.com"
    assert u.path == "/~user/a%2Fb/c"
    assert normalise_url("http://x.com/a/%2e%2e/b").path == "/b"
    assert normalise_url("http://%ff.com/").kind == "invalid"


def test_userinfo_is_dropped() -> None:
    u = normalise_url("http://good.com@bad.com/")
    assert u.host == "bad.com"
    assert normalise_url("http://user:pw@good.com:8080@bad.com:81/x").host == "bad.com"


def test_ports() -> None:
    assert normalise_url("https://example.com/").port == 443
    assert normalise_url("http://example.com:8080/").port == 8080
    assert normalise_url("http://example.com:99999/").kind == "invalid"
    assert normalise_host("example.com:443").port == 443
    assert normalise_host("example.com").port is None
    assert normalise_host("example.com:x").kind == "invalid"


@pytest.mark.parametrize(("url", "ip"), [
    ("http://3232235777/", "192.168.1.1"),
    ("http://0x7f.1/", "127.0.0.1"),
    ("http://0177.0.0.1/", "127.0.0.1"),
    ("http://0x7f000001/", "127.0.0.1"),
    ("http://192.168.1/", "192.168.0.1"),
    ("http://10.0.0.1/", "10.0.0.1"),
])
def test_ipv4_forms(url: str, ip: str) -> None:
    u = normalise_url(url)
    assert (u.kind, u.host) == ("ipv4", ip)


@pytest.mark.parametrize("url", ["http://1.2.3.4.5/", "http://256.1.1.1/", "http://example.123/",
                                 "http://09.1.1.1/", "http://4294967296/"])
def test_bad_numbers_are_invalid(url: str) -> None:
    assert normalise_url(url).kind == "invalid"


def test_ipv6_literals() -> None:
    u = normalise_url("http://[::1]:8080/")
    assert (u.kind, u.host, u.port) == ("ipv6", "::1", 8080)
    assert normalise_url("http://[2001:DB8:0:0::1]/").host == "2001:db8::1"
    assert normalise_url("http://[::ffff:10.0.0.1]/").host == "10.0.0.1"  # v4-mapped is v4
    assert normalise_url("http://[fe80::1%25eth0]/").kind == "invalid"
    assert normalise_host("[::1]:53") .port == 53
    assert normalise_host("::1").kind == "ipv6"
    assert normalise_url("http://[::1/").kind == "invalid"


def test_www_site() -> None:
    assert normalise_url("http://www.bbc.co.uk/").site == "bbc.co.uk"
    assert normalise_host("www2.example.com").site == "example.com"
    assert normalise_host("www.com").site == "www.com"
    assert normalise_host("www.bbc.co.uk").host == "www.bbc.co.uk"  # host itself unchanged


def test_empty_and_overlong_labels() -> None:
    assert normalise_url("http://a..b.com/").problem == "empty label"
    assert normalise_url("http://.a.com/").kind == "invalid"
    assert "63" in normalise_url(f"http://{'a' * 64}.com/").problem
    assert normalise_url(f"http://{'a' * 63}.com/").kind == "name"
    long_name = ".".join(["a" * 50] * 5) + ".com"
    assert "253" in normalise_host(long_name).problem
    assert normalise_url("http://:80/path").problem == "empty host"
    assert normalise_url("http:///path").host == "path"  # as browsers read it


def test_invalid_never_raises() -> None:
    for junk in ["", "http://", "://", "http://[", "http://a b/", "http://x.com:/", "\x00", "[]:1",
                 "http://exa<mple.com/", "http://" + "a." * 200]:
        normalise_url(junk)
        normalise_host(junk)
    assert normalise_url("http://exa mple.com/").kind == "invalid"


def test_no_scheme_and_backslashes() -> None:
    assert normalise_url("example.com/path").host == "example.com"
    u = normalise_url("http:\\\\evil.com\\a\\b")
    assert (u.host, u.path) == ("evil.com", "/a/b")


def test_path_query_fragment() -> None:
    u = normalise_url("http://x.com/a/./b/../c?x=1&y#frag")
    assert (u.path, u.query) == ("/a/c", "x=1&y")
    assert u.target == "x.com/a/c?x=1&y"
    assert normalise_url("http://x.com").path == "/"
    assert normalise_url("http://x.com?q").target == "x.com/?q"


def test_fast_path_leaves_white_space_and_controls_to_the_general_path() -> None:
    assert normalise_url("http://x.com/a\tb").path == "/ab"  # browsers drop tabs and newlines
    assert normalise_url("http://x.com/a?q=1\n").query == "q=1"
    assert normalise_url("http://x.com/a ").path == "/a"     # and trailing spaces
    assert normalise_url("http://x.com/a\x00").path == "/a"
    assert normalise_url("http://x.com/a b").path == "/a b"  # an inner space stays, as before
    assert normalise_url(f"http://{'a' * 64}.com/").kind == "invalid"  # long label: general path


def test_fast_path_equals_general_path_on_generated_urls() -> None:
    """Whatever the fast path accepts, the general path normalises the same way."""
    import random

    from categories.normalise import _fast_url, _normalise_url_slow

    rng = random.Random(12)
    schemes = ["http://", "https://", "HTTPS://", "ftp://", ""]
    labels = ["a", "example", "www", "b-c", "_x", "1", "x1", "A", "a" * 63, "a" * 64, "é"]
    tails = ["", "/", "/a/b", "/a/./b", "/a/../b", "/%7e", "/a b", "/a\tb", "?q=1", "?q=%41&x",
             "#frag", "#f\n", "/x?y#z", "\\a", ":8080/", ":99999/", ":/", " ", "\x00", "/."]
    fast = 0
    for _ in range(20000):
        host = ".".join(rng.choice(labels) for _ in range(rng.randint(1, 4)))
        url = rng.choice(schemes) + host + "".join(rng.choice(tails) for _ in range(rng.randint(0, 3)))
        fast += _fast_url(url) is not None
        assert normalise_url(url) == _normalise_url_slow(url), url
    assert fast > 2000  # the generated URLs exercise the fast path too


def test_ipv4_fast_path_equals_general_path_on_generated_urls() -> None:
    """Dotted-decimal hosts: the canonical form takes the fast path, every other form the general one,
    and both say the same (leading zeros are octal, 256 is no octet, three parts are a number)."""
    import random

    from categories.normalise import _fast_ipv4_url, _normalise_url_slow

    rng = random.Random(13)
    parts = ["0", "1", "9", "10", "99", "100", "199", "200", "249", "250", "255", "256", "300", "01", "010", "0x7f"]
    tails = ["", "/", "/a", "/a/../b", "/%41", ":80", ":8081/file", ":99999/", "?q=1", "#f", "/x?y#z", "\\a", " "]
    fast = 0
    for _ in range(20000):
        host = ".".join(rng.choice(parts) for _ in range(rng.choice([3, 4, 4, 4, 5])))
        url = rng.choice(["http://", "https://", "HTTP://"]) + host + "".join(rng.choice(tails)
                                                                          for _ in range(rng.randint(0, 2)))
        fast += _fast_ipv4_url(url) is not None
        assert normalise_url(url) == _normalise_url_slow(url), url
    assert fast > 1000
    assert normalise_url("http://127.0.0.1:8081/file") == NormalisedURL("ipv4", "http", "127.0.0.1", 8081, "/file",
                                                                       "", "")
