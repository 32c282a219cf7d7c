"""The alert rules: which evaluations the safeguarding leads hear of, as what, and how urgently.

The policy function (`proxy.policy.decide`) already marks a decision
`flagged` with a severity from the config.  `AlertRules.classify` turns a
flagged evaluation into one `Hit` of a kind the emails and the incident
register understand, in this order of precedence:

  illegal        the illegal tier (IWF / CTIRU lists): always immediate
  watchlist      a search matching a watch list (self-harm, extremism...)
  circumvention  a circumvention category (VPN, proxies, DoH) or request shape
  bare_ip        a bare-IP URL from a pupil
  category       any other flagged category (adult, drugs, hacking...)

and, from every blocked *attempt* (a page the person asked for, not the
images or scripts of an allowed page), the repeated-blocks rule: N blocked
attempts by one user (or device) within M minutes make one `repeated` hit.
The sliding window is in memory: it restarts with the service, which at worst
delays one `repeated` hit; every flagged hit itself is stored.
"""
from __future__ import annotations

import datetime as dt
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from alerts.hits import Hit, stronger
from config.schema import ILLEGAL_CATEGORIES, Settings
from proxy.engine import Evaluation

logger = logging.getLogger(__name__)

DEFAULT_CIRCUMVENTION = frozenset({"vpn", "doh", "redirector", "strict_redirector", "residential-proxies"})
ATTEMPT_RULES = ("category.", "walled_garden", "bare_ip", "circumvention.", "illegal_tier", "host.unparseable")
_MAX_WINDOW_KEYS = 50_000


class RepeatWindow:
    """Blocked attempts per person in a sliding window of `minutes`; fires at `count`."""

    def __init__(self, count: int, minutes: int) -> None:
        self.count = count
        self.span = dt.timedelta(minutes=minutes).total_seconds()
        self._seen: dict[str, deque[float]] = {}

    def add(self, key: str, at: dt.datetime) -> bool:
        """Record one attempt; True when it makes `count` within the window (the window then restarts)."""
        now = at.timestamp()
        times = self._seen.get(key)
        if times is None:
            if len(self._seen) >= _MAX_WINDOW_KEYS:
                self._prune(now)
            times = self._seen[key] = deque()
        times.append(now)
        while times and times[0] <= now - self.span:
            times.popleft()
        if len(times) >= self.count:
            times.clear()
            return True
        return False

    def _prune(self, now: float) -> None:
        for key in [k for k, t in self._seen.items() if not t or t[-1] <= now - self.span]:
            del self._seen[key]


class AlertRules:
    def __init__(self, settings: Settings, watch_topic: Callable[[str], str] | None = None) -> None:
        self.settings = settings
        self.alerts = settings.alerts
        self.watch_topic = watch_topic
        self.circumvention = settings.category_sets.get("circumvention") or DEFAULT_CIRCUMVENTION
        rep = self.alerts.repeated
        self.window = RepeatWindow(rep.count, rep.minutes) if rep is not None else None

    def classify(self, ev: Evaluation, url: str, at: dt.datetime, *, attempt: bool = True) -> list[Hit]:
        """The hits one evaluation makes (none, one, or a flagged hit plus a `repeated` one).

        `attempt` says whether the request was something the person asked for
        (a page or a direct request) rather than a part of a page.
        """
        hits: list[Hit] = []
        d = ev.decision
        if d.flagged or ev.watch_phrase or d.rule == "illegal_tier":
            hit = self.flagged_hit(ev, url, at)
            if hit is not None:
                hits.append(hit)
        if (self.window is not None and attempt and d.blocked and d.rule.startswith(ATTEMPT_RULES)
                and self.window.add(self._who_key(ev), at)):
            hits.append(self._repeated(ev, url, at))
        return hits

    def flagged_hit(self, ev: Evaluation, url: str, at: dt.datetime) -> Hit | None:
        d = ev.decision
        cats = ev.categories | frozenset(d.categories)
        a = self.alerts
        illegal = cats & ILLEGAL_CATEGORIES
        if d.rule == "illegal_tier" or illegal:
            return self._hit(ev, url, at, "illegal", "immediate", min(illegal) if illegal else "iwf").redacted()
        if ev.watch_phrase and ev.search is not None:
            topic = self.watch_topic(ev.search.term) if self.watch_topic is not None else ""
            sev = stronger(d.severity, a.watchlists.get(topic, ""))
            if sev:
                return self._hit(ev, url, at, "watchlist", sev, topic or "watch list", topic=topic)
        circ = cats & self.circumvention
        if d.rule.startswith("circumvention.") or (circ and d.flagged):
            name = min(circ) if circ else d.rule.removeprefix("circumvention.")
            sev = stronger(d.severity, a.circumvention)
            return self._hit(ev, url, at, "circumvention", sev, name)
        if d.rule == "bare_ip":
            return self._hit(ev, url, at, "bare_ip", d.severity or a.bare_ip, "bare-ip") if (
                d.severity or a.bare_ip) else None
        if not d.flagged:
            return None
        immediate = sorted(cats & a.immediate)
        digest = sorted(cats & a.digest)
        main = (immediate or digest or sorted(d.categories) or [d.rule])[0]
        return self._hit(ev, url, at, "category", d.severity or ("immediate" if immediate else "digest"), main)

    def _hit(self, ev: Evaluation, url: str, at: dt.datetime, kind: str, severity: str, category: str,
             topic: str = "") -> Hit:
        who = ev.identity
        d = ev.decision
        return Hit(
            at=at.astimezone(dt.UTC), kind=kind, severity=severity, category=category,
            categories=tuple(sorted(ev.categories | frozenset(d.categories))), user=who.user, role=who.role,
            device=who.device, device_class=who.device_class, client_ip=who.client_ip, group=d.group,
            network=who.network, url=url, search_term=ev.search.term if ev.search is not None else "",
            watch_topic=topic, action=d.action.value, rule=d.rule, reason=d.reason)

    def _repeated(self, ev: Evaluation, url: str, at: dt.datetime) -> Hit:
        rep = self.alerts.repeated
        assert rep is not None
        illegal = ev.decision.rule == "illegal_tier"
        hit = self._hit(ev, "" if illegal else url, at, "repeated", rep.severity, "blocked attempts")
        return replace(hit, attempts=rep.count, search_term="" if illegal else hit.search_term,
                       categories=() if illegal else hit.categories,
                       reason=f"{rep.count} blocked attempts within {rep.minutes} minutes")

    @staticmethod
    def _who_key(ev: Evaluation) -> str:
        who = ev.identity
        if who.user:
            return f"user:{who.user}"
        if who.device:
            return f"device:{who.device}"
        return f"ip:{who.client_ip}"
