"""The settings a school's config file describes, as validated, frozen objects.

`config.loader.load_settings` builds these from TOML; nothing else constructs
them from user input.  Every field here has already been checked.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DEVICE_CLASSES = (
    "school_shared",       # shared school devices (KS1 iPads, KS2 laptops)
    "school_single_user",  # a school device assigned to one user (staff laptop)
    "loaned",              # an authorised home device, assigned to a pupil
    "staff_owned",
    "visitor_owned",
    "pupil_owned",         # not allowed in school
)
ACCESS_LEVELS = ("full", "limited", "internet_only", "none")
TLS_MODES = ("intercept", "passthrough")
GROUP_MODES = ("blocklist", "walled_garden")
ROLES = ("pupil", "staff", "volunteer", "visitor")
SEVERITIES = ("immediate", "digest")
YOUTUBE_MODES = ("strict", "moderate", "off")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ILLEGAL_CATEGORIES = frozenset({"iwf", "ctiru"})


@dataclass(frozen=True)
class SchoolHours:
    days: frozenset[int]          # 0 = Monday ... 6 = Sunday
    start: dt.time
    end: dt.time
    closed_dates: frozenset[dt.date] = frozenset()   # holidays, INSET days

    def contains(self, local: dt.datetime) -> bool:
        """Whether a school-local datetime falls in school hours."""
        if local.weekday() not in self.days or local.date() in self.closed_dates:
            return False
        return self.start <= local.time() < self.end


@dataclass(frozen=True)
class School:
    name: str
    timezone: ZoneInfo
    hours: SchoolHours
    internal_networks: tuple[IPNetwork, ...]


@dataclass(frozen=True)
class Network:
    """A network of the school and what the device policy table says about it."""

    name: str
    cidr: IPNetwork
    device_class: str
    access: str                 # full | limited | internet_only | none
    tls: str                    # intercept | passthrough
    group: str | None           # default group; None = the assigned user's group


@dataclass(frozen=True)
class Group:
    name: str
    description: str
    mode: str                              # blocklist | walled_garden
    block: frozenset[str]                  # categories blocked at all times
    block_in_hours: frozenset[str]         # categories blocked in school hours only
    allow: frozenset[str]                  # walled garden: the allowed categories
    block_bare_ip: bool
    youtube: str                           # strict | moderate | off
    safesearch: bool
    overridable: bool                      # teachers may lift blocks for this group
    fail_closed: bool                      # no decision possible -> block
    is_pupil: bool
    alert_immediate: frozenset[str] = frozenset()   # flagged for this group on top of [alerts] immediate
    alert_digest: frozenset[str] = frozenset()      # ... and on top of [alerts] digest


@dataclass(frozen=True)
class RepeatRule:
    count: int
    minutes: int
    severity: str


@dataclass(frozen=True)
class AlertSettings:
    recipients: tuple[str, ...]
    digest_recipients: tuple[str, ...]
    immediate: frozenset[str]             # categories whose hits are emailed at once
    digest: frozenset[str]                # categories collected into the digest
    watchlists: dict[str, str]            # watch-list topic -> severity
    circumvention: str                    # severity of circumvention attempts
    bare_ip: str                          # severity of bare-IP URLs from pupils ("" = none)
    repeated: RepeatRule | None
    digest_every: str                     # hourly | daily
    group_window_minutes: int
    max_emails_per_hour: int
    sender: str


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str                         # none | starttls | tls
    username: str
    password_env: str
    password_file: Path | None
    timeout_s: float


@dataclass(frozen=True)
class ProxySettings:
    mode: str                             # regular (explicit proxy, PAC/WPAD) | transparent (firewall redirect)
    listen_host: str
    listen_port: int
    auth: str                             # none | htpasswd | ldap
    htpasswd: Path | None
    ldap: str                             # mitmproxy's proxyauth ldap spec, without password
    ldap_password_env: str
    no_intercept: tuple[str, ...]         # domains never decrypted (banking, health, gov)
    block_page_name: str                  # host name the block pages and PAC file answer on


@dataclass(frozen=True)
class DnsSettings:
    enabled: bool
    listen_host: str
    listen_port: int
    upstreams: tuple[tuple[str, int], ...]
    block_answer: str                     # blockpage | zero | nxdomain
    block_ttl: int
    min_ttl: int
    max_ttl: int
    timeout_s: float
    rate_limit_qps: float
    rate_limit_burst: int


@dataclass(frozen=True)
class CategorySource:
    name: str
    location: str                         # URL or absolute path
    format: str                           # ut1 | domains | hosts
    category: str | None
    illegal: bool
    optional: bool


@dataclass(frozen=True)
class CategorySettings:
    sources: tuple[CategorySource, ...]
    max_shrink: float
    max_download_mb: int
    timeout_s: float
    update_hours: int


@dataclass(frozen=True)
class StorageSettings:
    database: Path
    visit_queue: int
    batch_size: int
    flush_interval_s: float


@dataclass(frozen=True)
class RetentionSettings:
    visits_days: int
    dns_days: int
    alerts_days: int
    incidents_days: int


@dataclass(frozen=True)
class ReportSettings:
    weekday: int
    time: dt.time
    recipients: tuple[str, ...]


@dataclass(frozen=True)
class MetricsSettings:
    """The Prometheus endpoint (`[metrics]`): off by default, loopback only."""

    enabled: bool = False
    listen_host: str = "127.0.0.1"
    port: int = 9810


@dataclass(frozen=True)
class RegisterSettings:
    users_csv: Path | None
    devices_csv: Path | None


@dataclass(frozen=True)
class Settings:
    source: Path
    school: School
    networks: tuple[Network, ...]
    groups: dict[str, Group]
    guest_group: str
    alerts: AlertSettings
    smtp: SmtpSettings
    proxy: ProxySettings
    dns: DnsSettings
    categories: CategorySettings
    storage: StorageSettings
    retention: RetentionSettings
    reports: ReportSettings
    register: RegisterSettings
    category_sets: dict[str, frozenset[str]] = field(default_factory=dict)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)

    def network_for(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Network | None:
        """The narrowest configured network containing `ip`."""
        best: Network | None = None
        for net in self.networks:
            if ip.version == net.cidr.version and ip in net.cidr and (
                best is None or net.cidr.prefixlen > best.cidr.prefixlen
            ):
                best = net
        return best

    def is_internal(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(ip.version == n.version and ip in n for n in self.school.internal_networks)
