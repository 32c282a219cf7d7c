"""What a person searched for, from one request (pure, no mitmproxy).

`extract_search` recognises the search URLs of the engines we know and
returns the search term; the watch lists then look at it, and the visit log
keeps it.  `keep_query` says whether a visit's query string may be kept in
the visit log at all: only for search engines, to keep personal data small.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from urllib.parse import unquote

from proxy.safesearch import is_search_engine_host

logger = logging.getLogger(__name__)

MAX_TERM_LENGTH = 200

_WIKIPEDIA_RE = re.compile(r"^(?:[a-z0-9-]+\.)?(?:m\.)?wikipedia\.org$")
_SPACES_RE = re.compile(r"\s+")
_Q_SEARCH_PATHS = frozenset({"/search", "/images/search", "/videos/search", "/news/search"})
_ECOSIA_EXTRA_PATHS = frozenset({"/images", "/videos", "/news"})


@dataclass(frozen=True, slots=True)
class SearchTerm:
    """One search: the engine's name and the words searched for."""

    engine: str
    term: str


def _host(host: str) -> str:
    host = host.lower().rstrip(".")
    if host.startswith("[") or host.count(":") > 1:
        return host
    return host.split(":", 1)[0]


def _first(query: list[tuple[str, str]], name: str) -> str | None:
    for key, value in query:
        if key == name:
            return value
    return None


def _clean(term: str | None) -> str | None:
    if term is None:
        return None
    term = _SPACES_RE.sub(" ", term).strip()
    if not term:
        return None
    return term[:MAX_TERM_LENGTH]


def _is_wikipedia(host: str) -> bool:
    return host.endswith("wikipedia.org") and _WIKIPEDIA_RE.match(host) is not None


def _engine_for(host: str) -> str | None:
    engine = is_search_engine_host(host)
    if engine is not None:
        return engine
    if _is_wikipedia(host):
        return "wikipedia"
    return None


def extract_search(host: str, path: str, query: list[tuple[str, str]]) -> SearchTerm | None:
    """The search term of this request, or None when it is not a search we know.

    `query` holds decoded (name, value) pairs; `path` may or may not still carry
    its query string (it is ignored).
    """
    h = _host(host)
    engine = _engine_for(h)
    if engine is None:
        return None
    p = path.split("?", 1)[0].split(";", 1)[0]
    term: str | None = None
    if engine in ("google", "bing", "ecosia"):
        if p in _Q_SEARCH_PATHS or (engine == "ecosia" and p in _ECOSIA_EXTRA_PATHS):
            term = _first(query, "q")
    elif engine == "duckduckgo":
        if p in ("/", "", "/html", "/html/", "/lite", "/lite/"):
            term = _first(query, "q")
    elif engine == "yahoo":
        if p.startswith("/search"):
            term = _first(query, "p")
    elif engine == "youtube":
        if p == "/results":
            term = _first(query, "search_query")
    elif engine == "wikipedia":
        wp = unquote(p)
        lwp = wp.lower()
        if lwp in ("/w/index.php", "/wiki/special:search"):
            term = _first(query, "search")
        elif lwp.startswith("/wiki/special:search/"):
            term = wp[len("/wiki/Special:Search/"):].replace("_", " ")
    term = _clean(term)
    if term is None:
        return None
    return SearchTerm(engine, term)


def keep_query(host: str) -> bool:
    """True when the visit log may keep this host's query strings (search engines only)."""
    return _engine_for(_host(host)) is not None
