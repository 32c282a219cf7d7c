"""The service sections of a school's config: mail, proxy, DNS, category lists, storage, retention,
reports, metrics and the register's sources.

Each function reads one table (`config.reader.Table`, which records every
problem with its key path and line) into its frozen `config.schema` object;
`config.loader` calls them and raises the collected problems together.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from config import schema as s
from config.reader import SECRET_KEY, SECRETS_ELSEWHERE, Table, parse_time


def smtp(t: Table, base: Path) -> s.SmtpSettings:
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


def proxy(t: Table, base: Path) -> s.ProxySettings:
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
    mode = t.text("mode", "regular", ("regular", "transparent"))
    if mode == "transparent" and auth != "none":
        t.error("mode", f'proxy login (auth = "{auth}") needs mode = "regular": a device that does not know it '
                        "goes through a proxy never sends proxy credentials")
    p = s.ProxySettings(
        mode=mode,
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


def dns(t: Table) -> s.DnsSettings:
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


def categories(t: Table, base: Path) -> s.CategorySettings:
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


def storage(t: Table) -> s.StorageSettings:
    st = s.StorageSettings(
        database=Path(t.text("database", "schoolgate.db")),
        visit_queue=t.integer("visit_queue", 100_000, minimum=100, maximum=10_000_000),
        batch_size=t.integer("batch_size", 2_000, minimum=1, maximum=100_000),
        flush_interval_s=t.number("flush_interval_s", 0.5, minimum=0.01, maximum=60),
    )
    t.finish()
    return st


def retention(t: Table) -> s.RetentionSettings:
    r = s.RetentionSettings(
        visits_days=t.integer("visits_days", 365, minimum=1, maximum=3650),
        dns_days=t.integer("dns_days", 90, minimum=1, maximum=3650),
        alerts_days=t.integer("alerts_days", 730, minimum=1, maximum=3650),
        incidents_days=t.integer("incidents_days", 2555, minimum=1, maximum=36500),
    )
    t.finish()
    return r


def reports(t: Table, default_recipients: tuple[str, ...]) -> s.ReportSettings:
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


def metrics(t: Table) -> s.MetricsSettings:
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


def register(t: Table, base: Path) -> s.RegisterSettings:
    users = t.text("users_csv", "")
    devices = t.text("devices_csv", "")
    r = s.RegisterSettings(users_csv=(base / users) if users else None,
                           devices_csv=(base / devices) if devices else None)
    t.finish()
    return r
