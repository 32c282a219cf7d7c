"""Plain words for the alert emails: when, who, which device, what category, in the school's terms.

Everything a template prints is prepared here as text, so the templates stay
simple and the illegal tier's redaction is decided in one place
(`illegal_view` never receives a URL, host or search term).
"""
from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from alerts.hits import Hit
from alerts.procedure import is_pupil, kind_of, next_steps, suggested_actions

logger = logging.getLogger(__name__)

DEVICE_CLASS_WORDS = {
    "school_shared": "school device shared by pupils",
    "school_single_user": "school device for one person",
    "loaned": "school device loaned for home use",
    "staff_owned": "staff-owned device",
    "visitor_owned": "visitor's device",
    "pupil_owned": "pupil-owned device",
    "unknown": "unknown device",
}
TOPIC_WORDS = {"self_harm": "self-harm and suicide", "extremism": "extremism", "bullying": "bullying",
               "adult": "adult content"}
TOPIC_UK = {"self_harm": "self-harm", "extremism": "extremism", "bullying": "", "adult": "pornography"}


def describe(category: str) -> str:
    try:
        from categories.taxonomy import describe as words
    except ImportError:  # the taxonomy is optional for the alerts
        return category.replace("_", " ")
    return words(category)


def uk_category(category: str) -> str:
    try:
        from categories.taxonomy import uk_category as uk
    except ImportError:
        return ""
    return uk(category) or ""


def when(at: dt.datetime, tz: ZoneInfo) -> str:
    """'Monday 23 November 2026, 10:04' in the school's time."""
    local = at.astimezone(tz)
    return f"{local:%A} {local.day} {local:%B %Y, %H:%M}"


def clock_time(at: dt.datetime, tz: ZoneInfo) -> str:
    return f"{at.astimezone(tz):%H:%M}"


@dataclass
class Line:
    label: str
    value: str


@dataclass
class AlertView:
    """One alert email about one person and one kind of hit."""

    severity: str
    subject: str
    headline: str
    illegal: bool
    reference: str
    count: int
    lines: list[Line]
    urls: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    table_row: str = ""
    actions: list[str] = field(default_factory=list)
    followup: bool = False
    school: str = ""


def what_words(hit: Hit) -> tuple[str, str, str]:
    """(plain words, UK category, list name) of what a hit was about."""
    if hit.kind == "illegal":
        return "an address on a list of illegal content", "illegal content", hit.category.upper()
    if hit.kind == "watchlist":
        topic = hit.watch_topic
        return (f"a search matching the {TOPIC_WORDS.get(topic, topic or 'watch')} watch list",
                TOPIC_UK.get(topic, ""), f"watch list {topic}" if topic else "watch list")
    if hit.kind == "circumvention":
        words = describe(hit.category) if hit.category in hit.categories else "a request that looks like a proxy"
        return f"getting round the filter: {words}", "", hit.category
    if hit.kind == "bare_ip":
        return "a web address made only of numbers (used to get round the filter)", "", "bare-ip"
    if hit.kind == "repeated":
        return f"repeated blocked attempts ({hit.reason})", "", "blocked attempts"
    return describe(hit.category), uk_category(hit.category), hit.category


def _device(hit: Hit) -> str:
    name = hit.device or (f"a device on {hit.network}" if hit.network else "an unregistered device")
    return f"{name} ({DEVICE_CLASS_WORDS.get(hit.device_class, hit.device_class or 'unknown device')})"


def _who(hit: Hit) -> str:
    role = f", {hit.role}" if hit.role else ""
    return f"{hit.user}{role}" if hit.user else "not logged in (identified by device)"


def _period(hits: Sequence[Hit], tz: ZoneInfo) -> str:
    first = min(h.at for h in hits)
    last = max(h.at for h in hits)
    if last - first < dt.timedelta(minutes=1):
        return when(first, tz)
    if first.astimezone(tz).date() == last.astimezone(tz).date():
        return f"{when(first, tz)} to {clock_time(last, tz)}"
    return f"{when(first, tz)} to {when(last, tz)}"


def alert_view(hits: Sequence[Hit], *, reference: str, tz: ZoneInfo, group_is_pupil: bool, school: str,
               followup: bool = False) -> AlertView:
    """The view of one alert (or follow-up) email for hits of one person and kind."""
    first = hits[0]
    count = sum(h.attempts for h in hits)
    pupil = is_pupil(first.role, group_is_pupil)
    kind = kind_of(first)
    words, uk, list_name = what_words(first)
    if first.kind == "repeated":   # one hit already stands for N attempts, and its words say so
        times = f" ({count} attempts)" if len(hits) > 1 else ""
    else:
        times = f" ({count} times)" if count > 1 else ""
    more = f" (follow-up: {count} more)" if followup else times
    lines = [Line("When", _period(hits, tz)), Line("User", _who(first)), Line("Group", first.group),
             Line("Device", _device(first)), Line("IP address", first.client_ip)]
    if first.illegal:
        subject = f"[Schoolgate] IMMEDIATE: illegal content - {first.group} - {reference}{more}"
        return AlertView(first.severity, subject, "Possible access to illegal content", True, reference, count,
                         lines, steps=next_steps("illegal", pupil, reference),
                         table_row=suggested_actions("illegal", pupil)[0],
                         actions=suggested_actions("illegal", pupil)[1], followup=followup, school=school)
    category = words + (f" (UK category: {uk})" if uk else "") + f"; list: {list_name}"
    lines += [Line("Category", category),
              Line("Decision", f"{'blocked' if first.action == 'block' else 'allowed'} by rule {first.rule}: "
                               f"{first.reason}")]
    if count > 1:
        lines.append(Line("Count", f"{count} {'attempts' if first.action == 'block' else 'requests'}"))
    if reference:
        lines.append(Line("Incident", reference))
    urls = list(dict.fromkeys(h.url for h in hits if h.url))[:10]
    terms = list(dict.fromkeys(h.search_term for h in hits if h.search_term))[:10]
    severity = first.severity.upper()
    subject = f"[Schoolgate] {severity}: {words} - {first.group}{more}"
    row, actions = suggested_actions(kind, pupil)
    return AlertView(first.severity, subject, words[:1].upper() + words[1:], False, reference, count, lines,
                     urls, terms, next_steps(kind, pupil, reference) if reference else [], row, actions,
                     followup, school)


@dataclass
class GroupLine:
    """One line of a summary or digest: one person, one kind of hit."""

    who: str
    group: str
    device: str
    what: str
    count: int
    period: str
    reference: str
    example: str


def group_lines(hits: Sequence[tuple[Hit, str]], tz: ZoneInfo, limit: int = 200) -> tuple[list[GroupLine], int]:
    """Hits (with their incident references) grouped per person and kind; (lines, lines left out)."""
    groups: dict[tuple[str, str, str], list[tuple[Hit, str]]] = {}
    for hit, ref in hits:
        groups.setdefault((hit.who_key, hit.kind, hit.category), []).append((hit, ref))
    lines: list[GroupLine] = []
    for members in groups.values():
        first = members[0][0]
        refs = ", ".join(dict.fromkeys(r for _, r in members if r))
        example = "" if first.illegal else (first.search_term or first.url)
        lines.append(GroupLine(_who(first), first.group, _device(first), what_words(first)[0],
                               sum(h.attempts for h, _ in members), _period([h for h, _ in members], tz), refs,
                               example))
    lines.sort(key=lambda line: -line.count)
    return lines[:limit], max(0, len(lines) - limit)
