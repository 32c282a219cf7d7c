"""Blocked attempts by UK category, by what was blocked, by group, by day and by hour.

Input: the buckets of `reports.visitstats.attention` (category set, group,
rule, UTC hour -> count).  Days and hours are the school's local time; an
attempt on a site in two UK categories counts once in each (so the UK
figures may add up to more than the blocked total; the template says so).
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from categories.taxonomy import UK_CATEGORIES, describe, uk_categories
from config.schema import Settings
from reports.redact import is_illegal
from reports.visitstats import Dictionaries, is_circumvention_rule

NO_UK_CATEGORY = "not in a UK category (school policy)"

RULE_WORDS = {
    "walled_garden": "not on the allowed list (walled garden)",
    "register.no_consent": "no parental consent recorded yet",
    "register.banned": "access removed (ban)",
    "register.revoked": "access withdrawn",
    "register.unknown_user": "user not in the register",
    "device.not_allowed": "pupil-owned device",
    "bare_ip": "numeric web address",
    "illegal_tier": "illegal content (IWF / CTIRU list)",
    "network.internal_only_device": "school network from an internet-only device",
    "host.unparseable": "address not understood",
    "client.outside_networks": "outside the school's networks",
}


@dataclass(frozen=True)
class Breakdown:
    uk: list[tuple[str, int]]          # every UK category (zeros too), then NO_UK_CATEGORY
    what: list[tuple[str, int]]        # plain words of what was blocked, busiest first
    groups: list[tuple[str, int]]      # busiest first
    days: list[tuple[dt.date, int]]    # every day of the period, in order
    heat: list[list[int]]              # [weekday 0..6][local hour 0..23]
    hours: list[int]                   # [local hour 0..23] over the whole period


def what_words(cats: tuple[str, ...], rule: str, group_blocks: frozenset[str]) -> str:
    """Plain words for why a bucket was blocked: the rule, or the blocked categories."""
    if is_illegal(cats, rule):
        return RULE_WORDS["illegal_tier"]
    if is_circumvention_rule(rule) and rule != "bare_ip":
        return "getting round the filter"
    if rule in RULE_WORDS:
        return RULE_WORDS[rule]
    chosen = [c for c in cats if c in group_blocks] or list(cats)
    if not chosen:
        return "uncategorised"
    return ", ".join(dict.fromkeys(describe(c) for c in sorted(chosen)))


def breakdown(buckets: Counter[tuple[int | None, int, int, int]], d: Dictionaries, settings: Settings,
              days: list[dt.date], tz: ZoneInfo) -> Breakdown:
    uk: Counter[str] = Counter()
    what: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    per_day: Counter[dt.date] = Counter()
    heat = [[0] * 24 for _ in range(7)]
    hours = [0] * 24
    local_of: dict[int, dt.datetime] = {}
    for (catset, gid, rid, hour_ts), n in buckets.items():
        cats = d.catsets.get(catset, ()) if catset is not None else ()
        rule = d.rules.get(rid, "")
        group = d.groups.get(gid, "?")
        found = uk_categories(list(cats))
        for name in found or [NO_UK_CATEGORY]:
            uk[name] += n
        g = settings.groups.get(group)
        blocks = (g.block | g.block_in_hours) if g is not None else frozenset()
        what[what_words(cats, rule, blocks)] += n
        groups[group] += n
        local = local_of.get(hour_ts)
        if local is None:
            local = local_of[hour_ts] = dt.datetime.fromtimestamp(hour_ts, tz)
        per_day[local.date()] += n
        heat[local.weekday()][local.hour] += n
        hours[local.hour] += n
    return Breakdown(
        uk=[(name, uk[name]) for name in UK_CATEGORIES] + [(NO_UK_CATEGORY, uk[NO_UK_CATEGORY])],
        what=sorted(what.items(), key=lambda kv: (-kv[1], kv[0])),
        groups=sorted(groups.items(), key=lambda kv: (-kv[1], kv[0])),
        days=[(day, per_day[day]) for day in days],
        heat=heat, hours=hours,
    )
