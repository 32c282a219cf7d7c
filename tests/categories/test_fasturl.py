"""`normalise_url`'s common case in C (`categories._fasturl`) against the Python fast path.

The C function must accept exactly the ASCII URLs that the Python fast path takes as a
plain name (its regular expression and the checks after it), give the same NormalisedURL
for them, and None for everything else (non-ASCII, IPv4, odd ports, dot segments,
escapes, upper case...), which then goes through Python as before.
"""
from __future__ import annotations

import random

import pytest

from categories import normalise
from categories.normalise import NormalisedURL, _fast_url, _labels_fit, normalise_url, normalise_url_py

try:
    from categories import _fasturl
except ImportError:  # no C compiler where the package was installed
    _fasturl = None

pytestmark = pytest.mark.skipif(_fasturl is None, reason="categories._fasturl was not built (no C compiler)")


def python_fast_path(url: str) -> NormalisedURL | None:
    """What Python's fast path gives for a plain name, or None where it goes on to other paths."""
    m = _fast_url(url)
    if m is None:
        return None
    _scheme, host, port_text, path, _query = m.groups()
    if ((len(host) < 64 or _labels_fit(host)) and (path is None or "/." not in path)
            and (port_text is None or int(port_text) < 65536)):
        return normalise_url_py(url)
    return None


ALPHABET = "abcz09_-.:/?#%\\@ \t\x00\x1f\x21\x7fA[]=&~"
PIECES = ["http://", "https://", "HTTP://", "www.", "example", ".com", ".", "..", ":80", ":65535", ":65536",
          ":123456", ":0", ":", "/", "/.", "/..", "?", "#", "a" * 63, "a" * 64, "1", "_", "-", ("b" * 60 + ".") * 4]


def test_the_same_urls_are_accepted_and_give_the_same_values() -> None:
    rng = random.Random(4)
    accepted = 0
    for i in range(150_000):
        if i % 2:
            url = ("".join(rng.choice(PIECES) for _ in range(rng.randint(1, 8)))
                   + "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 6))))
        else:
            url = rng.choice(["http://", "https://"]) + "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 20)))
        got = _fasturl.simple_url(url, NormalisedURL)
        assert got == python_fast_path(url), url
        if got is not None:
            assert type(got) is NormalisedURL and got == normalise.normalise_url_py(url)
            accepted += 1
    assert accepted > 2000  # the generator reaches the accepted shapes too


def test_examples() -> None:
    simple = _fasturl.simple_url
    assert simple("https://www.example.com/a/b?q=1#top", NormalisedURL) == (
        "name", "https", "www.example.com", 443, "/a/b", "q=1", "")
    assert simple("http://example.com", NormalisedURL) == ("name", "http", "example.com", 80, "/", "", "")
    assert simple("http://example.com:8080?", NormalisedURL) == ("name", "http", "example.com", 8080, "/", "", "")
    got = simple("https://a.b/x", NormalisedURL)
    assert got is not None and got.site == "a.b" and got.target == "a.b/x"  # a real NormalisedURL
    for url in ["https://bücher.de/", "https://a.com/é", "http://1.2.3.4/", "http://a.com:65536/",
                "http://a.com/./x", "http://a.com/%41", "http://A.com/", "HTTP://a.com/", "http://a..com/",
                "http://a.com./", "http://.a.com/", "http://u@a.com/", "http://a.com/a b", "http://a.com\\x",
                f"http://{'a' * 64}.com/", "ftp://a.com/", "a.com/x", ""]:
        assert simple(url, NormalisedURL) is None, url
        assert normalise_url(url) == normalise_url_py(url), url  # and Python still answers


def test_wrong_arguments_raise() -> None:
    with pytest.raises(TypeError):
        _fasturl.simple_url("http://a.com/")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _fasturl.simple_url("http://a.com/", dict)
    assert _fasturl.simple_url(b"http://a.com/", NormalisedURL) is None  # not a str: Python decides


def test_normalise_url_uses_it_unless_asked_not_to() -> None:
    assert (normalise._simple_url is not None) != normalise.native.PURE_PYTHON
