"""Everything a request needs decided, in one place, for the proxy, DNS and `explain`.

`Engine` holds the live state the pure policy function reads: the settings,
the category index (reopened when an update swaps it), the register snapshot,
the local list tuning and the active overrides.  `evaluate()` normalises the
URL, looks up its categories, detects circumvention and watch-listed search
terms, then calls `proxy.policy.decide`.  The state is refreshed from the
database by `refresh()` (the service calls it every few seconds), never on the
request path.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from categories.live import LiveIndex
from categories.normalise import normalise_host, normalise_url
from categories.tuning import LocalLists
from config.schema import Settings
from proxy.circumvention import detect_circumvention
from proxy.decision import Decision
from proxy.identity import EmptyRegister, Register, identify
from proxy.policy import Identity, Override, Request, decide, decide_failure
from proxy.searchterms import SearchTerm, extract_search
from proxy.watchlists import Watchlists

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A decision with what led to it, for the visit log, alerts and `explain`."""

    decision: Decision
    identity: Identity
    host: str
    host_kind: str
    path: str
    query: str
    categories: frozenset[str]
    search: SearchTerm | None
    watch_phrase: str


class Engine:
    def __init__(self, settings: Settings, index_path: Path | None = None,
                 register: Register | None = None, local: LocalLists | None = None,
                 overrides: Sequence[Override] = (), watchlists: Watchlists | None = None) -> None:
        self.settings = settings
        self.index = LiveIndex(index_path) if index_path is not None else None
        self.register: Register = register or EmptyRegister()
        self.local = local or LocalLists(())
        self.overrides: tuple[Override, ...] = tuple(overrides)
        self.watchlists = watchlists or Watchlists.load()
        self.arp: dict[str, str] = {}
        self.failures = 0

    def categorise_host(self, host: str) -> frozenset[str]:
        index = self.index.current if self.index is not None else None
        cats = index.lookup_host(host) if index is not None else frozenset()
        return self.local.apply(host, cats)

    def identify(self, client_ip: str, login: str | None = None, at: dt.datetime | None = None) -> Identity:
        today = (at or dt.datetime.now(dt.UTC)).astimezone(self.settings.school.timezone).date()
        return identify(self.settings, self.register, client_ip, login, today, self.arp)

    def evaluate(self, who: Identity, url: str, *, method: str = "GET", at: dt.datetime | None = None,
                 headers: Mapping[str, str] | None = None, dest_ip: str | None = None,
                 connect_port: int | None = None) -> Evaluation:
        """Decide one request for `who`. `url` is absolute (`http://host/path?q`), or `host:port` for CONNECT.

        Never raises: if the request cannot be looked up, the group's fail-closed setting decides.
        """
        at = at or dt.datetime.now(dt.UTC)
        try:
            return self._evaluate(who, url, method, at, headers or {}, dest_ip, connect_port)
        except Exception as exc:  # fail closed for pupils, never crash the proxy
            self.failures += 1
            decision = decide_failure(self.settings, who, type(exc).__name__)
            logger.exception("could not decide %s for %s: %s", url[:200], who.client_ip, decision.rule)
            return Evaluation(decision, who, "", "invalid", "", "", frozenset(), None, "")

    def _evaluate(self, who: Identity, url: str, method: str, at: dt.datetime, headers: Mapping[str, str],
                  dest_ip: str | None, connect_port: int | None) -> Evaluation:
        if connect_port is not None:
            nh = normalise_host(url)
            kind, host, path, query_text, port, problem = nh.kind, nh.host, "", "", connect_port, nh.problem
            pairs: list[tuple[str, str]] = []
        else:
            nu = normalise_url(url)
            kind, host, path, query_text, problem = nu.kind, nu.host, nu.path, nu.query, nu.problem
            port = nu.port or 0
            pairs = _pairs(query_text)
        cats: frozenset[str] = frozenset()
        if kind != "invalid":
            index = self.index.current if self.index is not None else None
            if index is not None:
                cats = index.lookup_url(nu) if connect_port is None else index.lookup_host(host)
            cats = self.local.apply(host, cats)
        dest: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
        for text in (host if kind in ("ipv4", "ipv6") else None, dest_ip):
            if text:
                try:
                    dest.append(ipaddress.ip_address(text))
                except ValueError:
                    pass
        circ = detect_circumvention(method, host, port or 0, path, pairs, headers, cats, _pupil(self, who))
        search = extract_search(host, path, pairs) if kind == "name" else None
        watch = self.watchlists.match(search.term) if search is not None else None
        req = Request(host=host, host_kind=kind, categories=cats, dest_ips=tuple(dest),
                      circumvention_rule=circ.rule if circ else "", circumvention_reason=circ.reason if circ else "",
                      watch_topic=watch.topic if watch else "", problem=problem or "")
        decision = decide(self.settings, who, req, at, self.overrides)
        return Evaluation(decision, who, host, kind, path, query_text, cats, search,
                          watch.phrase if watch else "")

    def decide_name(self, who: Identity, name: str, at: dt.datetime | None = None) -> Decision:
        """A domain-level decision (the DNS resolver's question)."""
        nh = normalise_host(name)
        cats = self.categorise_host(nh.host) if nh.kind != "invalid" else frozenset()
        req = Request(host=nh.host, host_kind=nh.kind, categories=cats, problem=nh.problem or "")
        return decide(self.settings, who, req, at or dt.datetime.now(dt.UTC), self.overrides)


def _pupil(engine: Engine, who: Identity) -> bool:
    group = engine.settings.groups.get(who.group)
    return who.is_pupil or (group is not None and group.is_pupil)


def _pairs(query: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    if not query:
        return []
    return parse_qsl(query, keep_blank_values=True)
