"""Normalise URLs and hosts before they are looked up in the category index.

`normalise_url(url)` and `normalise_host(host)` never raise: a host that cannot
be parsed comes back as a value of kind "invalid" with a `problem`, and the
policy engine blocks it for pupils.  Host rules are in `categories.hostparse`.

URL rules (as a browser would send the request):
- the scheme is optional (`example.com/path` is read as `http://example.com/path`);
- userinfo is dropped: `http://good.com@bad.com/` is host `bad.com`;
- the port is the explicit one or the scheme's default (None if unknown);
- the path keeps its case; escapes of unreserved characters are decoded
  (`%7Euser` -> `~user`), other escapes are upper-cased, `.` and `..`
  segments are resolved; backslashes count as slashes, as browsers do;
- the fragment is dropped (it never reaches a server); `query` has no `?`.

`site` is the host without a leading `www.` / `wwwN.` label: what a person
would call the site, used for display and for matching URL list entries.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import NamedTuple

from categories import native
from categories.hostparse import parse_host

logger = logging.getLogger(__name__)

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_WWW = re.compile(r"www\d*\.")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# The common case in one C-level match: lower-case http(s), a plain name
# (same rule as hostparse's fast path; label lengths are checked after),
# optional port, a path without escapes, backslashes, white space or control
# characters (which the general path strips or rewrites), an optional query,
# an optional fragment.  Possessive repeats: the host part never backtracks.
# Anything else takes the general path.
_FAST_NAME = r"((?:[a-z0-9_-]++\.)*+[a-z_][a-z0-9_-]*+)"
_FAST_TAIL = r"(?::([0-9]{1,5}))?(/[^?#%\\\x00-\x20]*)?(?:\?([^#\x00-\x20]*))?(?:#.*)?"   # port, path, query
_FAST_URL = re.compile(rf"(https?)://{_FAST_NAME}{_FAST_TAIL}", re.DOTALL)
_fast_url = _FAST_URL.fullmatch
# The same for a dotted-decimal IPv4 host in its canonical form (no leading zeros, each part <= 255):
# `parse_host` gives it back unchanged, as kind "ipv4".  Other IPv4 forms (octal, hex, fewer parts)
# take the general path.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_FAST_IPV4_URL = re.compile(rf"(https?)://({_OCTET}(?:\.{_OCTET}){{3}}){_FAST_TAIL}", re.DOTALL)
_fast_ipv4_url = _FAST_IPV4_URL.fullmatch
_SPECIAL = re.compile(r"(https?|wss?|ftp):[/\\]*", re.IGNORECASE)
_new_tuple = tuple.__new__  # NormalisedURL(...) without the generated __new__'s call overhead


@dataclass(frozen=True)
class NormalisedHost:
    kind: str              # "name" | "ipv4" | "ipv6" | "invalid"
    host: str              # lower-case punycode name, dotted IPv4, compressed IPv6 ("" if unknown)
    port: int | None
    problem: str = ""      # why the host is invalid ("" otherwise)

    @property
    def site(self) -> str:
        return strip_www(self.host) if self.kind == "name" else self.host


class NormalisedURL(NamedTuple):
    """A URL as it is looked up (see the module docstring).

    A named tuple, not a frozen dataclass: one is built for every request, and
    `tuple.__new__` with the seven values is about twice as fast as filling a
    frozen dataclass (the fields are read by C-level descriptors just as fast).
    """
    kind: str              # "name" | "ipv4" | "ipv6" | "invalid"
    scheme: str
    host: str
    port: int | None
    path: str              # always starts with "/"
    query: str             # without the leading "?"; "" when there is none
    problem: str = ""

    @property
    def site(self) -> str:
        return strip_www(self.host) if self.kind == "name" else self.host

    @property
    def target(self) -> str:
        """`host/path?query`: the form UT1 `urls` entries and expressions are written in."""
        if self.query:
            return f"{self.host}{self.path}?{self.query}"
        return self.host + self.path


def _url(kind: str, scheme: str, host: str, port: int | None, path: str, query: str,
         problem: str) -> NormalisedURL:
    return _new_tuple(NormalisedURL, (kind, scheme, host, port, path, query, problem))


def strip_www(host: str) -> str:
    """`www.example.com` -> `example.com`; a bare `www.com`-like name is left alone."""
    m = _WWW.match(host)
    if m is not None and host.count(".") >= 2:
        return host[m.end():]
    return host


def _port(text: str, scheme: str) -> tuple[int | None, str]:
    if not text:
        return DEFAULT_PORTS.get(scheme), ""
    if not text.isascii() or not text.isdigit() or int(text) > 65535:
        return None, f"bad port {text[:20]!r}"
    return int(text), ""


def normalise_host(host: str) -> NormalisedHost:
    """Normalise a bare host, `host:port`, `[v6]:port` or bare IPv6 (CONNECT targets, DNS names)."""
    text = host.strip()
    port_text = ""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return NormalisedHost("invalid", "", None, "unterminated IPv6 literal")
        text, rest = text[: end + 1], text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                return NormalisedHost("invalid", "", None, "junk after IPv6 literal")
            port_text = rest[1:]
    elif text.count(":") == 1:
        text, _, port_text = text.partition(":")
    kind, name, problem = parse_host(text)
    if problem:
        return NormalisedHost("invalid", name, None, problem)
    port, problem = _port(port_text, "")
    if problem:
        return NormalisedHost("invalid", name, None, problem)
    return NormalisedHost(kind, name, port, "")


def normalise_url_py(url: str) -> NormalisedURL:
    """`normalise_url` in Python: the fast path's regular expressions, else the general path."""
    kind = "name"
    m = _fast_url(url)
    if m is None:
        m = _fast_ipv4_url(url)
        kind = "ipv4"
    if m is not None:
        scheme, host, port_text, path, query = m.groups()
        if ((len(host) < 64 or _labels_fit(host)) and (path is None or "/." not in path)
                and (port_text is None or int(port_text) < 65536)):
            return _new_tuple(NormalisedURL, (kind, scheme, host,
                                              int(port_text) if port_text else DEFAULT_PORTS[scheme],
                                              path or "/", query or "", ""))
    return _normalise_url_slow(url)


_built = native.built("_fasturl")  # the fast path of a plain name in C, where it was built
_simple_url = _built.simple_url if _built is not None and not native.PURE_PYTHON else None


def _normalise_url_c(url: str) -> NormalisedURL:
    """`normalise_url` with its common case in C (`categories._fasturl`), else `normalise_url_py`."""
    fast = _simple_url(url, NormalisedURL)  # type: ignore[misc]  # a plain lower-case http(s) URL of a name
    if fast is not None:
        return fast  # type: ignore[no-any-return]
    return normalise_url_py(url)


normalise_url = _normalise_url_c if _simple_url is not None else normalise_url_py
"""Normalise an absolute URL (or `host/path` without a scheme); see the module docstring."""


def _labels_fit(host: str) -> bool:
    return len(host) <= 253 and max(map(len, host.split("."))) <= 63


def _normalise_url_slow(url: str) -> NormalisedURL:
    text = url.strip(" \t\r\n\x00")
    if "\t" in text or "\n" in text or "\r" in text:
        text = text.replace("\t", "").replace("\n", "").replace("\r", "")
    scheme = "http"
    i = text.find("://")
    special = _SPECIAL.match(text)
    if special is not None:
        scheme = special.group(1).lower()
        rest = text[special.end():]
    elif i > 0 and _SCHEME.fullmatch(text[:i].lower()) is not None:
        scheme = text[:i].lower()
        rest = text[i + 3:]
    elif text.startswith("//"):
        rest = text[2:]
    else:
        rest = text
    # The authority ends at the first of / ? # (and \ , as browsers treat it as /).
    end = len(rest)
    for sep in "/?#\\":
        j = rest.find(sep, 0, end)
        if j >= 0:
            end = j
    authority, remainder = rest[:end], rest[end:]
    at = authority.rfind("@")
    if at >= 0:
        authority = authority[at + 1:]
    port_text = ""
    if authority.startswith("["):
        close = authority.find("]")
        if close >= 0 and authority[close + 1: close + 2] == ":":
            authority, port_text = authority[: close + 1], authority[close + 2:]
    else:
        colon = authority.rfind(":")
        if colon >= 0:
            authority, port_text = authority[:colon], authority[colon + 1:]
    path, query = split_target(remainder)
    kind, host, problem = parse_host(authority)
    if problem:
        return _url("invalid", scheme, host, None, path, query, problem)
    port, problem = _port(port_text, scheme)
    if problem:
        return _url("invalid", scheme, host, None, path, query, problem)
    return _url(kind, scheme, host, port, path, query, "")


def split_target(remainder: str) -> tuple[str, str]:
    """Split `/path?query#fragment` into a normalised path and the query (fragment dropped)."""
    hashpos = remainder.find("#")
    if hashpos >= 0:
        remainder = remainder[:hashpos]
    path, _, query = remainder.partition("?")
    if not path:
        return "/", query
    if "\\" in path:
        path = path.replace("\\", "/")
    if not path.startswith("/"):
        path = "/" + path
    if "%" in path:
        path = _ESCAPE.sub(_unescape, path)
    if "/." in path:
        path = remove_dot_segments(path)
    return path, query


def _unescape(m: re.Match[str]) -> str:
    value = int(m.group(1), 16)
    return chr(value) if value in _UNRESERVED else "%" + m.group(1).upper()


def remove_dot_segments(path: str) -> str:
    """RFC 3986 section 5.2.4: `/a/b/../c/./d` -> `/a/c/d` (never above the root)."""
    out: list[str] = []
    segments = path.split("/")[1:]
    for k, seg in enumerate(segments):
        last = k == len(segments) - 1
        if seg == "..":
            if out:
                out.pop()
            if last:
                out.append("")
        elif seg == ".":
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/" + "/".join(out)
