"""Safe search on every intercepted request (pure, no mitmproxy).

`safesearch_rewrite` looks at one request and says what to change so that the
search engine answers in its safe mode: query parameters to set and headers to
set.  It returns None when the host is not a search engine, or when the
request is already safe, so the caller does nothing on the hot path.

- google: google.<tld>, www.google.<cc>, google.com.<cc>, google.co.<cc>: `safe=active`
- bing: bing.com, www.bing.com: `adlt=strict` (strict.bing.com is already safe)
- duckduckgo: duckduckgo.com, html./lite.duckduckgo.com: `kp=1`
  (safe.duckduckgo.com is already safe)
- yahoo: search.yahoo.com, <cc>.search.yahoo.com: `vm=r`
- ecosia: ecosia.org, www.ecosia.org: field `f=y` (strict) of the `ECFG` cookie
- youtube: youtube.com, www./m.youtube.com, youtubei.googleapis.com,
  youtube.googleapis.com, www.youtube-nocookie.com: header
  `YouTube-Restrict: Strict` (or `Moderate`)

Ecosia documents no URL parameter for safe search; its settings page stores
the choice in the `ECFG` cookie (`f=y` strict, `f=i` moderate, `f=n` off), so
we rewrite that one field of the Cookie header and leave the other settings.

For traffic we do not decrypt (pass-through devices, the DNS resolver),
`safesearch_dns_target` names the engines' own "forced safe" host names that
a resolver can answer with (a CNAME), e.g. `forcesafesearch.google.com`.
"""
from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

YOUTUBE_MODES = ("strict", "moderate", "off")

_GOOGLE_RE = re.compile(
    r"^(?:www\.)?google\.(?:[a-z]{2,3}|co\.[a-z]{2}|com\.[a-z]{2})$"
)
_GOOGLE_SEARCH_PATHS = (
    "/search", "/webhp", "/imghp", "/images", "/videohp", "/complete/search",
)
_BING_HOSTS = frozenset({"bing.com", "www.bing.com", "strict.bing.com"})
_BING_SEARCH_PATHS = (
    "/search", "/images/search", "/videos/search", "/news/search", "/as/suggestions",
    "/images/async", "/videos/asyncv2",
)
_DDG_HOSTS = frozenset({
    "duckduckgo.com", "www.duckduckgo.com", "html.duckduckgo.com", "lite.duckduckgo.com",
    "safe.duckduckgo.com", "links.duckduckgo.com",
})
_YAHOO_RE = re.compile(r"^(?:[a-z]{2}\.|images\.|video\.|[a-z]{2}\.images\.)?search\.yahoo\.com$")
_ECOSIA_HOSTS = frozenset({"ecosia.org", "www.ecosia.org"})
_YOUTUBE_HOSTS = frozenset({
    "youtube.com", "www.youtube.com", "m.youtube.com", "youtubei.googleapis.com",
    "youtube.googleapis.com", "www.youtube-nocookie.com",
})
# Cheap first test: every host above contains one of these.
_MARKERS = ("google", "bing", "duckduckgo", "yahoo", "ecosia", "youtube")

_ALREADY_SAFE_HOSTS = frozenset({"strict.bing.com", "safe.duckduckgo.com"})


@dataclass(frozen=True, slots=True)
class Rewrite:
    """What to change in one request to make it safe.

    `query_set`: set each name to exactly this one value (replacing every
    existing value of that name); `headers_set`: set each header to this value
    (replacing it).  `engine` names the search engine, for logs.
    """

    engine: str
    query_set: dict[str, str] = field(default_factory=dict)
    headers_set: dict[str, str] = field(default_factory=dict)

    def apply_query(self, query: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The query with `query_set` applied (a helper for callers and tests)."""
        out = [(k, v) for k, v in query if k not in self.query_set]
        out.extend(self.query_set.items())
        return out


def _clean_host(host: str) -> str:
    host = host.lower().rstrip(".")
    if host.startswith("[") or host.count(":") > 1:
        return host  # IPv6 literal: never a search engine
    return host.split(":", 1)[0]


@functools.lru_cache(maxsize=8192)
def is_search_engine_host(host: str) -> str | None:
    """The engine name when `host` is a search engine (or YouTube) we make safe.

    Asked several times for every request and DNS query (safe search, search terms, circumvention) about
    the same few thousand hosts: remembered (a pure function of the string; ~1 MB at most).
    """
    host = _clean_host(host)
    if not any(marker in host for marker in _MARKERS):
        return None
    if _GOOGLE_RE.match(host):
        return "google"
    if host in _YOUTUBE_HOSTS:
        return "youtube"
    if host in _BING_HOSTS:
        return "bing"
    if host in _DDG_HOSTS:
        return "duckduckgo"
    if host in _ECOSIA_HOSTS:
        return "ecosia"
    if _YAHOO_RE.match(host):
        return "yahoo"
    return None


def safesearch_dns_target(host: str, youtube_mode: str = "strict") -> str | None:
    """The engine's own "always safe" host a resolver may CNAME `host` to, if any."""
    engine = is_search_engine_host(host)
    if engine == "google":
        return "forcesafesearch.google.com"
    if engine == "bing" and _clean_host(host) != "strict.bing.com":
        return "strict.bing.com"
    if engine == "duckduckgo" and _clean_host(host) in ("duckduckgo.com", "www.duckduckgo.com"):
        return "safe.duckduckgo.com"
    if engine == "youtube" and youtube_mode in ("strict", "moderate"):
        return "restrict.youtube.com" if youtube_mode == "strict" else "restrictmoderate.youtube.com"
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lname = name.lower()
    for key, val in headers.items():
        if key.lower() == lname:
            return val
    return None


def _query_is(query: list[tuple[str, str]], name: str, wanted: str) -> bool:
    """True when `name` occurs and every occurrence has the value `wanted`."""
    values = [v for k, v in query if k == name]
    return bool(values) and all(v.lower() == wanted for v in values)


def _path_only(path: str) -> str:
    return path.split("?", 1)[0].lower()


def _ecosia_cookie(cookie: str | None) -> str | None:
    """The Cookie header with Ecosia's strict setting, or None when it is already strict."""
    parts = [p.strip() for p in cookie.split(";")] if cookie else []
    parts = [p for p in parts if p]
    for i, part in enumerate(parts):
        name, _, value = part.partition("=")
        if name.strip() != "ECFG":
            continue
        fields = [f for f in value.split(":") if f]
        if "f=y" in fields and not any(f.startswith("f=") and f != "f=y" for f in fields):
            return None
        fields = [f for f in fields if not f.startswith("f=")] + ["f=y"]
        parts[i] = "ECFG=" + ":".join(fields)
        return "; ".join(parts)
    parts.append("ECFG=f=y")
    return "; ".join(parts)


def _youtube(headers: Mapping[str, str], youtube_mode: str) -> Rewrite | None:
    mode = youtube_mode.lower()
    if mode not in YOUTUBE_MODES:
        raise ValueError(f"youtube_mode must be one of {YOUTUBE_MODES}, not {youtube_mode!r}")
    if mode == "off":
        return None
    wanted = "Strict" if mode == "strict" else "Moderate"
    current = _header(headers, "YouTube-Restrict")
    if current is not None and current.strip().lower() == mode:
        return None
    return Rewrite("youtube", headers_set={"YouTube-Restrict": wanted})


def safesearch_rewrite(
    scheme: str,
    host: str,
    path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    youtube_mode: str,
) -> Rewrite | None:
    """What to change so this request gets safe results, or None (not a search or already safe).

    `scheme` is accepted for symmetry with the flow (http and https get the
    same treatment); `youtube_mode` is "strict", "moderate" or "off".
    """
    del scheme
    engine = is_search_engine_host(host)
    if engine is None or _clean_host(host) in _ALREADY_SAFE_HOSTS:
        return None
    if engine == "youtube":
        return _youtube(headers, youtube_mode)
    p = _path_only(path)
    if engine == "google":
        searchy = p.startswith(_GOOGLE_SEARCH_PATHS) or (
            p in ("", "/") and any(k == "q" for k, _ in query)
        )
        if not searchy or _query_is(query, "safe", "active"):
            return None
        return Rewrite("google", query_set={"safe": "active"})
    if engine == "bing":
        if not p.startswith(_BING_SEARCH_PATHS) or _query_is(query, "adlt", "strict"):
            return None
        return Rewrite("bing", query_set={"adlt": "strict"})
    if engine == "duckduckgo":
        searchy = p.startswith(("/html", "/lite", "/d.js", "/i.js", "/v.js", "/news.js")) or (
            p in ("", "/") and any(k == "q" for k, _ in query)
        )
        if not searchy or _query_is(query, "kp", "1"):
            return None
        return Rewrite("duckduckgo", query_set={"kp": "1"})
    if engine == "yahoo":
        if not p.startswith("/search") or _query_is(query, "vm", "r"):
            return None
        return Rewrite("yahoo", query_set={"vm": "r"})
    # ecosia
    if not p.startswith(("/search", "/images", "/videos", "/news")):
        return None
    cookie = _ecosia_cookie(_header(headers, "Cookie"))
    if cookie is None:
        return None
    return Rewrite("ecosia", headers_set={"Cookie": cookie})
