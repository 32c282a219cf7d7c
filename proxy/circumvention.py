"""Circumvention by the shape of a request (pure, no mitmproxy).

`detect_circumvention` says whether one request looks like an attempt to get
round the filter, and which rule says so.  The policy engine turns a hit into
a blocked, flagged decision; `rule` is stable (logs, reports, tests) and
`reason` is for a teacher.  Rules, in the order they are tried:

- `circumvention.category_<name>`: the host is listed in `vpn`, `doh`,
  `redirector`, `strict_redirector` or `residential-proxies`;
- `circumvention.connect_port`: a pupil's CONNECT to a port other than 443;
- `circumvention.doh_shape`: DNS-over-HTTPS by shape: `application/dns-message`
  or `application/dns-json` in Content-Type/Accept, `/dns-query`,
  `/resolve?name=`, `?dns=`;
- `circumvention.translate_proxy`: `*.translate.goog`,
  `translate.google.*/translate?u=`, `translate.googleusercontent.com`;
- `circumvention.web_proxy`: web-proxy scripts: `/browse.php?u=` (Glype),
  `/proxy?url=`, `nph-proxy.cgi` (CGIProxy), `index.php?q=aHR0c` (PHProxy);
- `circumvention.url_wrapper`: `?u=`, `?url=` or `?q=` carrying a web address,
  on a host with no category (search engines excepted).

`category` says which flagged circumvention category a hit counts as.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

from proxy.safesearch import is_search_engine_host

logger = logging.getLogger(__name__)

CIRCUMVENTION_CATEGORIES: tuple[str, ...] = (
    "vpn", "doh", "redirector", "strict_redirector", "residential-proxies",
)
_CATEGORY_WORDS = {
    "vpn": "a VPN service, which hides browsing from the school's filter",
    "doh": "a DNS-over-HTTPS service, which hides browsing from the school's filter",
    "redirector": "a web proxy or redirector, which fetches other sites to get round the filter",
    "strict_redirector": "a web proxy or redirector, which fetches other sites to get round "
                         "the filter",
    "residential-proxies": "a residential proxy network, which hides browsing from the "
                           "school's filter",
}
_DOH_TYPES = ("application/dns-message", "application/dns-json", "application/dns-udpwireformat")
_TRANSLATE_RE = re.compile(r"^translate\.google\.(?:[a-z]{2,3}|co\.[a-z]{2}|com\.[a-z]{2})$")
_URL_VALUE_RE = re.compile(r"^\s*(?:https?:(?://|%2f%2f)|https?%3a|www\.)", re.IGNORECASE)
_WRAPPER_PARAMS = frozenset({"u", "url", "q"})
_BASE64_HTTP = ("aHR0c", "aHR0cHM")          # base64 of "http" / "https"
_ALLOWED_CONNECT_PORTS = frozenset({443})


@dataclass(frozen=True, slots=True)
class Circumvention:
    """A circumvention hit: `rule` (stable name), `reason` (words), `category` it counts as."""

    rule: str
    reason: str
    category: str


def _host(host: str) -> str:
    host = host.lower().rstrip(".")
    if host.startswith("[") or host.count(":") > 1:
        return host
    return host.split(":", 1)[0]


def _values(query: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in query if k.lower() == name]


def _doh(path: str, query: list[tuple[str, str]], headers: Mapping[str, str]) -> str | None:
    for key, raw in headers.items():
        value = raw.lower()
        if "dns" not in value:
            continue
        name = key.lower()
        if name in ("content-type", "accept") and any(t in value for t in _DOH_TYPES):
            return f"the request asks for DNS answers over HTTPS ({name}: {value[:80]})"
    if path == "/dns-query" or path.startswith("/dns-query/"):
        return "the request goes to /dns-query, the standard DNS-over-HTTPS address"
    if path in ("/resolve", "/dns-json") and _values(query, "name"):
        return "the request asks a JSON DNS-over-HTTPS service to resolve a name"
    if _values(query, "dns") and path.rstrip("/").endswith(("dns-query", "dns")):
        return "the request carries a DNS query in its address (DNS-over-HTTPS)"
    return None


def _translate(host: str, path: str, query: list[tuple[str, str]]) -> str | None:
    if host.endswith(".translate.goog"):
        return "the site is opened through Google Translate's page proxy (translate.goog)"
    if _TRANSLATE_RE.match(host) and path.startswith("/translate") and (
        _values(query, "u") or _values(query, "url")
    ):
        return "the site is opened through Google Translate's page proxy (translate?u=)"
    if host == "translate.googleusercontent.com":
        return "the site is opened through Google Translate's page proxy"
    return None


def _web_proxy(path: str, query: list[tuple[str, str]]) -> str | None:
    lpath = path.lower()
    if lpath.endswith("/browse.php") and _values(query, "u"):
        return "the address has the shape of a web-proxy script (browse.php?u=)"
    if lpath.rstrip("/").endswith("/proxy") and (_values(query, "url") or _values(query, "u")):
        return "the address has the shape of a web proxy (proxy?url=)"
    if "/nph-proxy.cgi" in lpath or "/nph-proxy.pl" in lpath:
        return "the address has the shape of a CGIProxy web proxy (nph-proxy.cgi)"
    if lpath.endswith("/index.php") and any(v.startswith(_BASE64_HTTP) for v in _values(query, "q")):
        return "the address carries an encoded web address for a PHP web proxy (index.php?q=)"
    return None


def _url_wrapper(host: str, query: list[tuple[str, str]]) -> str | None:
    if is_search_engine_host(host) is not None:
        return None                       # someone searching for a pasted address
    for key, value in query:
        if key.lower() in _WRAPPER_PARAMS and _URL_VALUE_RE.match(value):
            return f"an unknown site is asked to fetch another web address ({key}=http...)"
    return None


def detect_circumvention(
    method: str,
    host: str,
    port: int,
    path: str,
    query: list[tuple[str, str]],
    headers: Mapping[str, str],
    categories: frozenset[str],
    is_pupil: bool,
) -> Circumvention | None:
    """The first circumvention rule this request hits, or None.

    `categories` are the host's categories from the index; `path` is the path
    without (or with, it is ignored) its query string; `query` is decoded.
    """
    for name in CIRCUMVENTION_CATEGORIES:
        if name in categories:
            return Circumvention(f"circumvention.category_{name.replace('-', '_')}",
                                 f"The site is {_CATEGORY_WORDS[name]}.", name)
    h = _host(host)
    p = path.split("?", 1)[0]
    if method.upper() == "CONNECT":
        if is_pupil and port not in _ALLOWED_CONNECT_PORTS:
            return Circumvention(
                "circumvention.connect_port",
                f"A pupil's device asked for a tunnel to port {port}; only web traffic "
                "(port 443) may go through the school's filter.", "vpn")
        if h.endswith(".translate.goog"):
            return Circumvention("circumvention.translate_proxy",
                                 f"Looks like a proxy: {_translate(h, p, query)}.", "redirector")
        return None
    reason = _doh(p, query, headers)
    if reason is not None:
        return Circumvention("circumvention.doh_shape", f"Looks like DNS-over-HTTPS: {reason}.",
                             "doh")
    reason = _translate(h, p, query)
    if reason is not None:
        return Circumvention("circumvention.translate_proxy", f"Looks like a proxy: {reason}.",
                             "redirector")
    reason = _web_proxy(p, query)
    if reason is not None:
        return Circumvention("circumvention.web_proxy", f"Looks like a web proxy: {reason}.",
                             "redirector")
    if not categories:
        reason = _url_wrapper(h, query)
        if reason is not None:
            return Circumvention("circumvention.url_wrapper", f"Looks like a web proxy: {reason}.",
                                 "redirector")
    return None
