"""Everything a request needs decided, in one place, for the proxy, DNS and `explain`.

`Engine` holds the live state the pure policy function reads: the settings,
the category index (reopened when an update swaps it), the register snapshot,
the local list tuning and the active overrides.  `evaluate()` normalises the
URL, looks up its categories, detects circumvention and watch-listed search
terms, then calls `proxy.policy.decide`.  The state is refreshed from the
database by `refresh()` (the service calls it every few seconds), never on the
request path.

`generation` counts the changes of what an identity depends on (settings,
register snapshot, ARP table) and of the overrides: assigning an equal value
(a reload that found nothing new) does not bump it.  `identify(..., conn=KEY)`
keeps each client connection's identity (per login) until the generation or
the school's date changes, or `forget_connection(KEY)` is called.
"""
from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import logging
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

from categories.live import LiveIndex
from categories.normalise import normalise_host, normalise_url
from categories.tuning import LocalLists
from config.schema import Settings
from proxy.circumvention import detect_circumvention
from proxy.decision import Decision
from proxy.identity import EmptyRegister, IdentityCache, Register, identify
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
        self.generation = 0
        self._settings = settings
        self.index = LiveIndex(index_path) if index_path is not None else None
        self._register: Register = register or EmptyRegister()
        self.local = local or LocalLists(())
        self._overrides: tuple[Override, ...] = tuple(overrides)
        self.watchlists = watchlists or Watchlists.load()
        self._arp: Mapping[str, str] = {}
        self.failures = 0
        self.identities = IdentityCache()
        self._day: tuple[dt.datetime, dt.datetime, dt.date, object] | None = None   # start, end (UTC), date, tz

    # what an identity depends on: a change (not a reload of the same) bumps `generation`
    @property
    def settings(self) -> Settings:
        return self._settings

    @settings.setter
    def settings(self, value: Settings) -> None:
        if value is not self._settings:
            self._settings = value
            self._day = None
            self.generation += 1

    @property
    def register(self) -> Register:
        return self._register

    @register.setter
    def register(self, value: Register) -> None:
        if value is not self._register and value != self._register:
            self.generation += 1
        self._register = value

    @property
    def arp(self) -> Mapping[str, str]:
        return self._arp

    @arp.setter
    def arp(self, value: Mapping[str, str]) -> None:
        if value is not self._arp and value != self._arp:
            self.generation += 1
        self._arp = value

    @property
    def overrides(self) -> tuple[Override, ...]:
        return self._overrides

    @overrides.setter
    def overrides(self, value: Sequence[Override]) -> None:
        value = tuple(value)
        if value != self._overrides:
            self.generation += 1
        self._overrides = value

    def categorise_host(self, host: str) -> frozenset[str]:
        index = self.index.current if self.index is not None else None
        cats = index.lookup_host(host) if index is not None else frozenset()
        return self.local.apply(host, cats)

    def identify(self, client_ip: str, login: str | None = None, at: dt.datetime | None = None, *,
                 conn: Hashable | None = None) -> Identity:
        """Who is at `client_ip` (logged in as `login`) on the school's date at `at`.

        With `conn` (a client connection's key) the identity is kept for that connection and login
        until the register, ARP table, overrides or settings change or the date does.
        """
        today = self.local_date(at or dt.datetime.now(dt.UTC))
        if conn is None:
            return identify(self.settings, self.register, client_ip, login, today, self.arp)
        key = (self.generation, today, client_ip)
        who = self.identities.get(conn, login, key)
        if who is None:
            who = identify(self.settings, self.register, client_ip, login, today, self.arp)
            self.identities.put(conn, login, key, who)
        return who

    def forget_connection(self, conn: Hashable) -> None:
        """The client connection `conn` closed: drop its identities."""
        self.identities.forget(conn)

    def local_date(self, at: dt.datetime) -> dt.date:
        """The school's date at `at` (remembered for the day: no time zone conversion per request)."""
        tz = self.settings.school.timezone
        day = self._day
        if day is not None and day[3] is tz and at.tzinfo is not None and day[0] <= at < day[1]:
            return day[2]
        today = at.astimezone(tz).date()
        if at.tzinfo is not None:
            start = dt.datetime.combine(today, dt.time(), tzinfo=tz).astimezone(dt.UTC)
            end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tzinfo=tz).astimezone(dt.UTC)
            if start.astimezone(tz).date() == today and (end - dt.timedelta(microseconds=1)).astimezone(tz).date() \
                    == today and start <= at < end:
                self._day = (start, end, today, tz)
        return today

    def evaluate(self, who: Identity, url: str, *, method: str = "GET", at: dt.datetime | None = None,
                 headers: Mapping[str, str] | None = None, dest_ip: str | None = None,
                 connect_port: int | None = None) -> Evaluation:
        """Decide one request for `who`. `url` is absolute (`http://host/path?q`), or `host:port` for CONNECT.

        Never raises: if the request cannot be looked up, the group's fail-closed setting decides.
        """
        at = at or dt.datetime.now(dt.UTC)
        try:
            return self._evaluate(who, url, method, at, {} if headers is None else headers, dest_ip, connect_port)
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
                addr = _ip(text)
                if addr is not None:
                    dest.append(addr)
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
    if not query:
        return []
    return parse_qsl(query, keep_blank_values=True)


@functools.lru_cache(maxsize=1024)
def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address literal parsed (remembered: the same few come back on every request to them)."""
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None
