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
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config import schema as s
from config.errors import ConfigError, ConfigIssue
from config.lines import key_lines
from config.reader import SECRET_KEY, SECRETS_ELSEWHERE, Issues, Table, parse_date, parse_network, parse_time

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
        smtp=_smtp(root.table("smtp"), base),
        proxy=_proxy(root.table("proxy", required=False), base),
        dns=_dns(root.table("dns", required=False)),
        categories=_categories(root.table("categories", required=False), base),
        storage=_storage(root.table("storage", required=False)),
        retention=_retention(root.table("retention", required=False)),
        reports=_reports(root.table("reports", required=False), alerts.recipients),
        register=_register(root.table("register", required=False), base),
        category_sets=sets,
        metrics=_metrics(root.table("metrics", required=False)),
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


def _smtp(t: Table, base: Path) -> s.SmtpSettings:
    if "password" in t.data:
        t.used.add("password")
        t.error("password", "secrets never go in the main config: use password_env (an environment "
                            "variable's name) or password_file (a file readable by the service only)")
    password_env = t.env_name("password_env", "SCHOOLGATE_SMTP_PASSWORD")
    pw_file = t.text("password_file", "")
    smtp = s.SmtpSettings(
        host=t.text("host", "127.0.0.1"),
        port=t.integer("port", 25, minimum=1, maximum=65535),
        security=t.text("security", "none", ("none", "starttls", "tls")),
        username=t.text("username", ""),
        password_env=password_env,
        password_file=(base / pw_file) if pw_file else None,
        timeout_s=t.number("timeout_s", 30.0, minimum=1, maximum=600),
    )
    t.finish()
    return smtp


def _proxy(t: Table, base: Path) -> s.ProxySettings:
    ht = t.text("htpasswd", "")
    auth = t.text("auth", "none", ("none", "htpasswd", "ldap"))
    if auth == "htpasswd" and not ht:
        t.error("htpasswd", "is required when auth = \"htpasswd\" (path of an htpasswd file)")
    ldap = t.text("ldap", "")
    if auth == "ldap" or ldap:   # checked even when unused: a bind password must not sit here either
        parts = ldap.split(":")
        expected = 5 if len(parts) > 2 and parts[2].isdigit() else 4
        if parts[0] not in ("ldap", "ldaps") or len(parts) != expected:
            t.error("ldap", "expected ldap[s]:SERVER[:PORT]:BIND_DN:SUBTREE_DN (the bind password comes from "
                            f"the environment variable in ldap_password_env); got {len(parts)} parts "
                            "(not repeated here, in case one is a password)")
    p = s.ProxySettings(
        listen_host=t.text("listen_host", "127.0.0.1"),
        listen_port=t.integer("listen_port", 8080, minimum=0, maximum=65535),
        auth=auth,
        htpasswd=(base / ht) if ht else None,
        ldap=ldap,
        ldap_password_env=t.env_name("ldap_password_env", "SCHOOLGATE_LDAP_PASSWORD"),
        no_intercept=tuple(t.strings("no_intercept", [])),
        block_page_name=t.text("block_page_name", "schoolgate.local"),
    )
    t.finish()
    return p


def _dns(t: Table) -> s.DnsSettings:
    ups = []
    for i, text in enumerate(t.strings("upstreams", [])):
        host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "53")
        try:
            ipaddress.ip_address(host.strip("[]"))
            ups.append((host.strip("[]"), int(port or 53)))
        except ValueError:
            t.issues.add(t.path + ("upstreams", i), f"expected an IP address with optional :port; got {text!r}")
    enabled = t.flag("enabled", False)
    if enabled and not ups:
        t.error("upstreams", "at least one upstream resolver is needed when the resolver is enabled")
    d = s.DnsSettings(
        enabled=enabled,
        listen_host=t.text("listen_host", "127.0.0.1"),
        listen_port=t.integer("listen_port", 5353, minimum=0, maximum=65535),
        upstreams=tuple(ups),
        block_answer=t.text("block_answer", "blockpage", ("blockpage", "zero", "nxdomain")),
        block_ttl=t.integer("block_ttl", 60, minimum=0, maximum=86400),
        min_ttl=t.integer("min_ttl", 30, minimum=0, maximum=86400),
        max_ttl=t.integer("max_ttl", 3600, minimum=0, maximum=604800),
        timeout_s=t.number("timeout_s", 2.0, minimum=0.1, maximum=30),
        rate_limit_qps=t.number("rate_limit_qps", 100.0, minimum=1, maximum=1_000_000),
        rate_limit_burst=t.integer("rate_limit_burst", 200, minimum=1, maximum=1_000_000),
    )
    if d.min_ttl > d.max_ttl:
        t.error("min_ttl", f"must not exceed max_ttl ({d.max_ttl}); got {d.min_ttl}")
    t.finish()
    return d


def _categories(t: Table, base: Path) -> s.CategorySettings:
    sources = []
    for src in t.tables("sources"):
        fmt = src.text("format", "ut1", ("ut1", "domains", "hosts"))
        location = src.text("url", "") or src.text("path", "")
        if not location:
            src.error("url", "each source needs url (http/https) or path")
        elif _url_secret(location):
            src.error("url", f"{_url_secret(location)} in a URL: {SECRETS_ELSEWHERE}; a feed that needs "
                             "a login can be downloaded by a separate job and named with path")
        elif not location.startswith(("http://", "https://")):
            location = str((base / location).resolve())
        category = src.text("category", "") or None
        if fmt != "ut1" and not category:
            src.error("category", f"is required for format {fmt!r} (the category its names belong to)")
        sources.append(s.CategorySource(src.text("name"), location, fmt, category,
                                        src.flag("illegal", False), src.flag("optional", False)))
        src.finish()
    c = s.CategorySettings(
        sources=tuple(sources),
        max_shrink=t.number("max_shrink", 0.5, minimum=0.0, maximum=1.0),
        max_download_mb=t.integer("max_download_mb", 300, minimum=1, maximum=10_000),
        timeout_s=t.number("timeout_s", 60.0, minimum=1, maximum=3600),
        update_hours=t.integer("update_hours", 24, minimum=1, maximum=24 * 30),
    )
    t.finish()
    return c


def _url_secret(url: str) -> str:
    """What secret a URL carries ("a user name and password", "a token"), or ""."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return ""
    if parts.username is not None or parts.password is not None:
        return "a user name and password"
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if SECRET_KEY.search(name) or name.lower() in ("key", "auth", "sig", "signature"):
            return f"a {name} parameter"
    return ""


def _storage(t: Table) -> s.StorageSettings:
    st = s.StorageSettings(
        database=Path(t.text("database", "schoolgate.db")),
        visit_queue=t.integer("visit_queue", 100_000, minimum=100, maximum=10_000_000),
        batch_size=t.integer("batch_size", 2_000, minimum=1, maximum=100_000),
        flush_interval_s=t.number("flush_interval_s", 0.5, minimum=0.01, maximum=60),
    )
    t.finish()
    return st


def _retention(t: Table) -> s.RetentionSettings:
    r = s.RetentionSettings(
        visits_days=t.integer("visits_days", 365, minimum=1, maximum=3650),
        dns_days=t.integer("dns_days", 90, minimum=1, maximum=3650),
        alerts_days=t.integer("alerts_days", 730, minimum=1, maximum=3650),
        incidents_days=t.integer("incidents_days", 2555, minimum=1, maximum=36500),
    )
    t.finish()
    return r


def _reports(t: Table, default_recipients: tuple[str, ...]) -> s.ReportSettings:
    day = t.text("weekday", "mon")
    if day.lower()[:3] not in s.WEEKDAYS:
        t.error("weekday", f"expected a day name such as mon; got {day!r}")
        day = "mon"
    r = s.ReportSettings(
        weekday=s.WEEKDAYS.index(day.lower()[:3]),
        time=t.parsed("time", parse_time, "a time as HH:MM", "07:00") or dt.time(7, 0),
        recipients=tuple(t.strings("recipients", list(default_recipients))),
    )
    t.finish()
    return r


def _metrics(t: Table) -> s.MetricsSettings:
    host = t.text("listen_host", "127.0.0.1")
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        t.error("listen_host", f"the metrics endpoint listens on loopback only (e.g. 127.0.0.1); got {host!r}")
    m = s.MetricsSettings(
        enabled=t.flag("enabled", False),
        listen_host=host.strip("[]"),
        port=t.integer("port", 9810, minimum=0, maximum=65535),
    )
    t.finish()
    return m


def _register(t: Table, base: Path) -> s.RegisterSettings:
    users = t.text("users_csv", "")
    devices = t.text("devices_csv", "")
    r = s.RegisterSettings(users_csv=(base / users) if users else None,
                           devices_csv=(base / devices) if devices else None)
    t.finish()
    return r
