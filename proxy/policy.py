"""The policy engine: one pure function from (who, what, when) to a `Decision`.

`decide()` does no I/O.  Its inputs are the validated settings, the identity
of the client (`proxy.identity`), what the category index said about the
destination, the active overrides and the time.  The HTTP addons, the DNS
resolver, `schoolgate explain` and the tests all call it, so a request is
decided the same way everywhere.

The rules, in the order they are tried (the first that fires decides):

 1. client outside every configured network      -> refused (never an open proxy)
 2. the illegal tier (iwf, ctiru)                 -> illegal page; nothing lifts it
 3. a device class that may not use the network   -> "not allowed in school"
 4. the register: no user record / no consent     -> "not yet authorised"
                  banned or revoked               -> "access removed"
 5. an internet-only device asking for the school's internal network -> blocked
 6. a host that cannot be parsed (pupils)         -> blocked
 7. a bare-IP URL (groups with block_bare_ip)     -> blocked
 8. KS1 walled garden: not on the allow list      -> walled-garden page
 9. blocked categories (always, or in school hours), minus teacher overrides
10. circumvention by request shape (DoH, CONNECT to odd ports, proxy wrappers)
11. otherwise allowed; a watch-listed search term flags the visit.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from config.schema import ILLEGAL_CATEGORIES, Group, Settings
from proxy.decision import Action, Decision, Page

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is asking, as `proxy.identity.identify` worked it out."""

    client_ip: str
    known: bool                  # the client is inside a configured network
    group: str
    user: str | None = None
    role: str | None = None
    user_state: str = "none"     # none | active | no_consent | banned | revoked | unknown
    device: str | None = None
    device_class: str = "unknown"
    network: str | None = None
    access: str = "full"         # full | limited | internet_only | none
    tls: str = "intercept"       # intercept | passthrough
    source: str = "guest"        # login | assigned | device | network | guest

    @property
    def is_pupil(self) -> bool:
        return self.role == "pupil"


@dataclass(frozen=True, slots=True)
class Request:
    """What is asked for, already normalised and looked up."""

    host: str
    host_kind: str = "name"                   # name | ipv4 | ipv6 | invalid
    categories: frozenset[str] = frozenset()
    dest_ips: tuple[IPAddress, ...] = ()      # literal or resolved addresses, when known
    circumvention_rule: str = ""              # from proxy.circumvention, "" when none
    circumvention_reason: str = ""
    watch_topic: str = ""                     # watch-list topic a search term matched
    problem: str = ""                         # why an invalid host is invalid


@dataclass(frozen=True, slots=True)
class Override:
    """A teacher's time-limited lifting of a block for a group."""

    id: int
    group: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    category: str | None = None
    domain: str | None = None
    by: str = ""

    def active(self, at: dt.datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def covers_host(self, host: str) -> bool:
        return self.domain is not None and (host == self.domain or host.endswith("." + self.domain))


def decide(settings: Settings, who: Identity, req: Request, at: dt.datetime,
           overrides: Sequence[Override] = ()) -> Decision:
    """The decision for one request. `at` must be timezone-aware."""
    group_name = who.group if who.group in settings.groups else settings.guest_group
    group = settings.groups[group_name]
    cats = req.categories

    if not who.known:
        return _block(settings, who, group, group_name, cats, "client.outside_networks",
                      f"{who.client_ip} is not on any of the school's networks, so it may not use this filter",
                      Page.REFUSED, severity="")
    illegal = cats & ILLEGAL_CATEGORIES
    if illegal:
        return _block(settings, who, group, group_name, cats, "illegal_tier", "This address is on a list of "
                      "illegal content (Internet Watch Foundation or Counter Terrorism Internet Referral Unit); "
                      "it cannot be unblocked", Page.ILLEGAL, illegal, severity="immediate")
    if who.device_class == "pupil_owned" or who.access == "none":
        return _block(settings, who, group, group_name, cats, "device.not_allowed",
                      "Personal devices belonging to pupils may not use the school internet", Page.DEVICE_NOT_ALLOWED)
    register = _register_rule(who)
    if register is not None:
        rule, reason, page = register
        return _block(settings, who, group, group_name, cats, rule, reason, page)
    if who.access == "internet_only" and any(settings.is_internal(ip) for ip in req.dest_ips):
        return _block(settings, who, group, group_name, cats, "network.internal_only_device",
                      f"{who.device_class.replace('_', '-')} devices may use the internet only, not the school's "
                      "internal network", Page.INTERNAL, severity="")
    if req.host_kind == "invalid" and (group.is_pupil or group.fail_closed):
        return _block(settings, who, group, group_name, cats, "host.unparseable",
                      f"The address could not be understood ({req.problem or 'invalid host'})", Page.CATEGORY,
                      severity="")
    active = [o for o in overrides if o.group == group_name and o.active(at)] if overrides and group.overridable \
        else []
    domain_override = next((o for o in active if o.covers_host(req.host)), None) if active else None
    if req.host_kind in ("ipv4", "ipv6") and group.block_bare_ip and domain_override is None:
        sev = settings.alerts.bare_ip if group.is_pupil else ""
        return _block(settings, who, group, group_name, cats, "bare_ip", "Web addresses made only of numbers are "
                      "not allowed for pupils, because they are used to get round the filter", Page.CATEGORY,
                      ("bare-ip",), severity=sev)
    if domain_override is not None:
        lifted = cats
    else:
        lifted = frozenset(o.category for o in active if o.category) if active else frozenset()
    # cats & (block | block_in_hours when in hours) - lifted; the clock is read only if it can matter
    blocked = cats & group.block
    timed = cats & group.block_in_hours
    if timed and _in_school_hours(settings, at):
        blocked |= timed
    if lifted:
        blocked -= lifted
    if blocked and req.circumvention_rule:   # the more specific reason: an attempt to get round the filter
        sev = _stronger(_severity(settings, cats, group), settings.alerts.circumvention)
        return _block(settings, who, group, group_name, cats, req.circumvention_rule,
                      req.circumvention_reason or "An attempt to get round the filter", Page.CATEGORY, blocked,
                      severity=sev)
    if blocked:
        in_hours_only = blocked <= group.block_in_hours and not (blocked & group.block)
        when = " during school hours" if in_hours_only else ""
        return _block(settings, who, group, group_name, cats,
                      "category.school_hours" if in_hours_only else "category.blocked",
                      f"{_names(blocked)} {'is' if len(blocked) == 1 else 'are'} blocked for {group_name}{when}",
                      Page.CATEGORY, blocked)
    if group.mode == "walled_garden" and domain_override is None and not (cats & group.allow or cats & lifted):
        return _block(settings, who, group, group_name, cats, "walled_garden", f"This site is not on the "
                      f"{group_name} list of allowed sites yet; a teacher can add it", Page.WALLED_GARDEN)
    if req.circumvention_rule:
        return _block(settings, who, group, group_name, cats, req.circumvention_rule,
                      req.circumvention_reason or "An attempt to get round the filter", Page.CATEGORY,
                      severity=settings.alerts.circumvention)
    override = domain_override or (next((o for o in active if o.category in cats), None) if active else None)
    sev = _severity(settings, cats, group)
    if req.watch_topic:
        sev = _stronger(sev, settings.alerts.watchlists.get(req.watch_topic, ""))
    shown = tuple(sorted(cats)) if cats else ()
    if override is not None:
        return Decision(Action.ALLOW, group_name, "override", _override_reason(settings, override, group_name),
                        shown, Page.NONE, bool(sev), sev, who.tls == "intercept", override.id)
    if req.watch_topic:
        return Decision(Action.ALLOW, group_name, "allow.search_watch",
                        f"Allowed; the search matched the {req.watch_topic} watch list", shown, Page.NONE,
                        bool(sev), sev, who.tls == "intercept")
    return Decision(Action.ALLOW, group_name, "allow", "Allowed", shown, Page.NONE, bool(sev), sev,
                    who.tls == "intercept")


def _block(settings: Settings, who: Identity, group: Group, group_name: str, cats: frozenset[str], rule: str,
           reason: str, page: Page, hit: frozenset[str] | tuple[str, ...] = (),
           severity: str | None = None) -> Decision:
    shown = tuple(sorted(hit)) if hit else tuple(sorted(cats))
    sev = _severity(settings, cats, group) if severity is None else severity
    return Decision(Action.BLOCK, group_name, rule, reason, shown, page, bool(sev), sev, _intercept(who))


# Memos of pure functions of their arguments (no state of their own, so `decide` stays pure): the
# answers cannot differ from computing them afresh, and they spare a time-zone conversion per request.
_hours_memo: tuple[object, int, bool] | None = None              # (school, minute, in hours)
_reason_memo: dict[tuple[int, str], tuple[Override, object, str]] = {}


def _in_school_hours(settings: Settings, at: dt.datetime) -> bool:
    """`settings.school.hours.contains(at in school time)`, worked out once per minute.

    School hours are whole minutes and every time-zone offset in use is whole minutes, so the answer
    is the same for the whole minute (the memo is not used when either is not so).
    """
    global _hours_memo
    school, memo = settings.school, _hours_memo
    if at.tzinfo is None:
        return school.hours.contains(at.astimezone(school.timezone))
    minute = int(at.timestamp() // 60)
    if memo is not None and memo[0] is school and memo[1] == minute:
        return memo[2]
    local = at.astimezone(school.timezone)
    hours, offset, answer = school.hours, local.utcoffset(), school.hours.contains(local)
    if (offset is not None and offset % dt.timedelta(minutes=1) == dt.timedelta(0)
            and not (hours.start.second or hours.start.microsecond or hours.end.second or hours.end.microsecond)):
        _hours_memo = (school, minute, answer)
    return answer


def _override_reason(settings: Settings, override: Override, group_name: str) -> str:
    """Why an override allows this ("... until 14:30 (games)"), formatted once per override and group."""
    tz = settings.school.timezone
    key = (id(override), group_name)
    memo = _reason_memo.get(key)
    if memo is not None and memo[0] is override and memo[1] is tz:
        return memo[2]
    what, until = override.domain or override.category, override.ends_at.astimezone(tz)
    reason = f"Allowed for {group_name} by {override.by or 'a teacher'} until {until:%H:%M} ({what})"
    if len(_reason_memo) >= 1024:
        _reason_memo.clear()
    _reason_memo[key] = (override, tz, reason)
    return reason


def decide_failure(settings: Settings, who: Identity, problem: str) -> Decision:
    """When no decision can be made (the index is unreadable, a bug): fail closed or open, per group."""
    group_name = who.group if who.group in settings.groups else settings.guest_group
    group = settings.groups[group_name]
    if not who.known:
        return Decision(Action.BLOCK, group_name, "client.outside_networks", "Not on the school's networks",
                        page=Page.REFUSED, intercept=_intercept(who))
    if group.fail_closed:
        return Decision(Action.BLOCK, group_name, "error.fail_closed", "The filter could not check this address "
                        f"({problem}), so it is blocked to keep you safe; please try again in a minute",
                        page=Page.CATEGORY, intercept=_intercept(who))
    return Decision(Action.ALLOW, group_name, "error.fail_open",
                    f"The filter could not check this address ({problem}); allowed for {group_name}",
                    intercept=_intercept(who))


def _register_rule(who: Identity) -> tuple[str, str, Page] | None:
    state = who.user_state
    if state == "banned":
        return ("register.banned", f"Internet access for {who.user} has been removed for now",
                Page.ACCESS_REMOVED)
    if state == "revoked":
        return "register.revoked", f"Internet access for {who.user} has been withdrawn", Page.ACCESS_REMOVED
    if state == "no_consent" and who.is_pupil:
        return ("register.no_consent", f"Parental permission for {who.user} to use the internet has not been "
                "recorded yet", Page.NOT_AUTHORISED)
    if state == "unknown":
        return ("register.unknown_user", f"{who.user} is not in the school's register of internet users",
                Page.NOT_AUTHORISED)
    return None


def _severity(settings: Settings, cats: frozenset[str], group: Group) -> str:
    """The alert severity of a hit on `cats` for `group` ("" = not flagged)."""
    if not cats:
        return ""
    alerts = settings.alerts
    if cats & alerts.immediate or cats & group.alert_immediate:
        return "immediate"
    if cats & alerts.digest or cats & group.alert_digest:
        return "digest"
    return ""


_SEVERITY_ORDER = {"": 0, "digest": 1, "immediate": 2}


def _stronger(a: str, b: str) -> str:
    return a if _SEVERITY_ORDER.get(a, 0) >= _SEVERITY_ORDER.get(b, 0) else b


def _intercept(who: Identity) -> bool:
    return who.tls == "intercept"


def _names(cats: frozenset[str]) -> str:
    return ", ".join(sorted(cats))


def should_intercept(settings: Settings, who: Identity, host: str, group: Group | None = None) -> bool:
    """Whether TLS to `host` may be decrypted for this client.

    Staff-owned and visitor devices pass through (decided on SNI/CONNECT host
    only); the no-intercept list (banking, health, government) is honoured for
    staff, never for pupils, whose safety needs the full URL.
    """
    if who.tls != "intercept":
        return False
    group = group or settings.groups.get(who.group)
    if group is not None and not group.is_pupil:
        for domain in settings.proxy.no_intercept:
            if host == domain or host.endswith("." + domain):
                return False
    return True
