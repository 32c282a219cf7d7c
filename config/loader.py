"""Load a school's TOML config into validated, frozen `Settings`.

Every problem is collected (file, key path, line, what was expected) and
raised together as one `ConfigError`.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import re
import tomllib
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config import schema as s
from config import sections
from config.errors import ConfigError, ConfigIssue
from config.lines import key_lines
from config.reader import Issues, Table, parse_date, parse_network, parse_time

logger = logging.getLogger(__name__)

DEFAULT_CONFIG = Path(__file__).with_name("example.toml")


def default_config_path() -> Path:
    env = os.environ.get("SCHOOLGATE_CONFIG")
    return Path(env) if env else DEFAULT_CONFIG


def load_settings(path: Path) -> s.Settings:
    """Read, parse and validate; raise `ConfigError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([ConfigIssue(path, "(file)", None, f"cannot read the config file: {exc.strerror}")]) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"at line (\d+)", str(exc))
        line = int(found.group(1)) if found else None
        raise ConfigError([ConfigIssue(path, "(syntax)", line, f"not valid TOML: {exc}")]) from None
    issues = Issues(path, key_lines(text))
    settings = _build(Table(data, (), issues), path.resolve().parent)
    if issues.items:
        raise ConfigError(sorted(issues.items, key=lambda i: (i.line or 0, i.key)))
    assert settings is not None
    return settings


def _build(root: Table, base: Path) -> s.Settings | None:
    school = _school(root.table("school"))
    sets = _category_sets(root.table("category_sets", required=False))
    groups = _groups(root.table("groups"), sets)
    guest = root.text("guest_group", "guest")
    if groups and guest not in groups:
        root.error("guest_group", f"names a group that is not defined (groups: {', '.join(groups)})")
    networks = _networks(root, groups)
    alerts = _alerts(root.table("alerts"), sets)
    settings = s.Settings(
        source=base,
        school=school,
        networks=networks,
        groups=groups,
        guest_group=guest,
        alerts=alerts,
        smtp=sections.smtp(root.table("smtp"), base),
        proxy=sections.proxy(root.table("proxy", required=False), base),
        dns=sections.dns(root.table("dns", required=False)),
        categories=sections.categories(root.table("categories", required=False), base),
        storage=sections.storage(root.table("storage", required=False)),
        retention=sections.retention(root.table("retention", required=False)),
        reports=sections.reports(root.table("reports", required=False), alerts.recipients),
        register=sections.register(root.table("register", required=False), base),
        category_sets=sets,
        metrics=sections.metrics(root.table("metrics", required=False)),
    )
    root.finish()
    return settings


def _school(t: Table) -> s.School:
    name = t.text("name")
    tz_name = t.text("timezone", "Europe/London")
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        t.error("timezone", f"expected an IANA time zone such as Europe/London; got {tz_name!r}")
        tz = ZoneInfo("UTC")
    nets = []
    for i, text in enumerate(t.strings("internal_networks", [])):
        try:
            nets.append(ipaddress.ip_network(text, strict=True))
        except ValueError as exc:
            t.issues.add(t.path + ("internal_networks", i), f"expected a network such as 10.20.0.0/24; {exc}")
    h = t.table("hours")
    days = set()
    for day in h.strings("days", ["mon", "tue", "wed", "thu", "fri"]):
        if day.lower()[:3] in s.WEEKDAYS:
            days.add(s.WEEKDAYS.index(day.lower()[:3]))
        else:
            h.error("days", f"expected day names such as mon, tue; got {day!r}")
    start = h.parsed("start", parse_time, "a time as HH:MM", "08:30") or dt.time(8, 30)
    end = h.parsed("end", parse_time, "a time as HH:MM", "15:30") or dt.time(15, 30)
    if end <= start:
        h.error("end", f"must be after start ({start:%H:%M}); got {end:%H:%M}")
    closed = set()
    for i, text in enumerate(h.strings("closed_dates", [])):
        try:
            closed.add(parse_date(text))
        except ValueError:
            h.issues.add(h.path + ("closed_dates", i), f"expected a date as YYYY-MM-DD; got {text!r}")
    h.finish()
    t.finish()
    return s.School(name, tz, s.SchoolHours(frozenset(days), start, end, frozenset(closed)), tuple(nets))


def _category_sets(t: Table) -> dict[str, frozenset[str]]:
    sets = {}
    for key in list(t.data):
        sets[key] = frozenset(t.strings(key))
    t.finish()
    return sets


def _expand(t: Table, key: str, sets: dict[str, frozenset[str]]) -> frozenset[str]:
    """Read a category list where `@name` stands for a `[category_sets]` entry."""
    out: set[str] = set()
    for item in t.strings(key, []):
        if item.startswith("@"):
            if item[1:] in sets:
                out |= sets[item[1:]]
            else:
                t.error(key, f"{item!r} names no entry of [category_sets] (have: {', '.join(sets) or 'none'})")
        else:
            out.add(item)
    return frozenset(out)


def _groups(t: Table, sets: dict[str, frozenset[str]]) -> dict[str, s.Group]:
    groups = {}
    for name in list(t.data):
        g = t.table(name)
        mode = g.text("mode", "blocklist", s.GROUP_MODES)
        group = s.Group(
            name=name,
            description=g.text("description", ""),
            mode=mode,
            block=_expand(g, "block", sets),
            block_in_hours=_expand(g, "block_in_hours", sets),
            allow=_expand(g, "allow", sets),
            block_bare_ip=g.flag("block_bare_ip", False),
            youtube=g.text("youtube", "moderate", s.YOUTUBE_MODES),
            safesearch=g.flag("safesearch", True),
            overridable=g.flag("overridable", True),
            fail_closed=g.flag("fail_closed", True),
            is_pupil=g.flag("pupils", False),
            alert_immediate=_expand(g, "alert_immediate", sets),
            alert_digest=_expand(g, "alert_digest", sets),
        )
        if mode == "walled_garden" and not group.allow:
            g.error("allow", "a walled_garden group needs at least one allowed category")
        g.finish()
        groups[name] = group
    if not groups:
        t.error(None, "at least one filter group must be defined ([groups.NAME])")
    return groups


def _networks(root: Table, groups: dict[str, s.Group]) -> tuple[s.Network, ...]:
    out = []
    for n in root.tables("networks"):
        cidr = n.parsed("cidr", parse_network, "a network such as 10.20.1.0/24 (host bits zero)")
        cls = n.text("device_class", "school_shared", s.DEVICE_CLASSES)
        group = n.text("group", "") or None
        if group is not None and groups and group not in groups:
            n.error("group", f"names a group that is not defined (groups: {', '.join(groups)})")
        if group is None and cls not in ("school_single_user", "loaned", "pupil_owned"):
            n.error("group", f"is required for device class {cls} (only devices assigned to a user may omit it)")
        network = s.Network(
            name=n.text("name"),
            cidr=cidr or ipaddress.ip_network("0.0.0.0/32"),
            device_class=cls,
            access=n.text("access", "full", s.ACCESS_LEVELS),
            tls=n.text("tls", "intercept", s.TLS_MODES),
            group=group,
        )
        n.finish()
        out.append(network)
    if not out:
        root.error("networks", "at least one [[networks]] entry is needed: Schoolgate serves only its own networks")
    return tuple(out)


def _alerts(t: Table, sets: dict[str, frozenset[str]]) -> s.AlertSettings:
    recipients = t.strings("recipients")
    for i, r in enumerate(recipients):
        if "@" not in r or r.startswith("@") or r.endswith("@"):
            t.issues.add(t.path + ("recipients", i), f"expected an email address; got {r!r}")
    if not recipients:
        t.error("recipients", "at least one recipient is needed (the E-Safety Leader)")
    watch = t.table("watchlists", required=False)
    watchlists = {topic: watch.text(topic, choices=s.SEVERITIES) for topic in list(watch.data)}
    watch.finish()
    rep = t.table("repeated_blocks", required=False)
    repeated = None
    if rep.data:
        repeated = s.RepeatRule(rep.integer("count", minimum=2, maximum=10_000),
                                rep.integer("minutes", minimum=1, maximum=1440),
                                rep.text("severity", "digest", s.SEVERITIES))
    rep.finish()
    alerts = s.AlertSettings(
        recipients=tuple(recipients),
        digest_recipients=tuple(t.strings("digest_recipients", recipients)),
        immediate=_expand(t, "immediate", sets),
        digest=_expand(t, "digest", sets),
        watchlists=watchlists,
        circumvention=t.text("circumvention", "immediate", s.SEVERITIES),
        bare_ip=t.text("bare_ip", "digest", ("",) + s.SEVERITIES),
        repeated=repeated,
        digest_every=t.text("digest_every", "hourly", ("hourly", "daily")),
        group_window_minutes=t.integer("group_window_minutes", 10, minimum=1, maximum=1440),
        max_emails_per_hour=t.integer("max_emails_per_hour", 30, minimum=1, maximum=10_000),
        sender=t.text("sender", "schoolgate@localhost"),
    )
    t.finish()
    return alerts
