"""The access register: who may use the internet, on which devices.

The school's policy promises "a record of all staff and pupils who are granted
internet access", that "parental permission is sought before pupils access the
Internet", and that access can be removed by a "temporary or permanent ban" or
"withdrawn".  The functions here change one user at a time; each change and its
audit row (who, when, what, why) are written in one transaction.

`RegisterSnapshot` is the in-memory copy the filter consults on every request
(`load_snapshot`); `proxy.registercsv` imports the school's MIS export.
"""
from __future__ import annotations

import ipaddress
import sqlite3
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

import aiosqlite

from proxy.audit import audit
from proxy.db import parse_date, parse_iso, transaction, utc_iso

ROLES = ("pupil", "staff", "volunteer", "visitor")
DEVICE_CLASSES = ("school_shared", "school_single_user", "loaned", "staff_owned",
                  "visitor_owned", "pupil_owned")
STATES = ("active", "no_consent", "banned", "revoked", "unknown")
_IP_CACHE_MAX = 65_536

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class RegisterError(ValueError):
    """A register change that cannot be made (unknown user, missing reason...)."""


@dataclass(frozen=True)
class User:
    username: str
    full_name: str
    role: str
    group_name: str
    year_group: str = ""
    consent: bool = False
    consent_at: datetime | None = None
    status: str = "active"            # active | banned | revoked
    status_until: date | None = None  # last day of a ban; None = no end
    status_reason: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Device:
    name: str
    mac: str | None          # aa:bb:cc:dd:ee:ff
    network: str             # an IP or a CIDR; "" when only the MAC is known
    device_class: str
    assigned_user: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


def effective_state(user: User, today: date) -> str:
    """active | no_consent | banned | revoked.  A ban ends after its `status_until` day."""
    if user.status == "revoked":
        return "revoked"
    if user.status == "banned" and (user.status_until is None or today <= user.status_until):
        return "banned"
    if user.role == "pupil" and not user.consent:
        return "no_consent"
    return "active"


def normalise_ip(ip: str) -> str | None:
    """Canonical text of an address ('::ffff:10.0.0.1' -> '10.0.0.1'); None if not one."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0].strip())
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return str(addr)


@dataclass(frozen=True)
class RegisterSnapshot:
    """The register in memory, for the filter's hot path (rebuilt on every reload)."""

    users: dict[str, User]
    devices: dict[str, Device]
    _by_ip: dict[str, Device] = field(init=False, repr=False, compare=False)
    _by_mac: dict[str, Device] = field(init=False, repr=False, compare=False)
    _networks: tuple[tuple[IPNetwork, Device], ...] = field(init=False, repr=False, compare=False)
    _cache: dict[str, Device | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_ip: dict[str, Device] = {}
        networks: list[tuple[IPNetwork, Device]] = []
        for device in sorted(self.devices.values(), key=lambda d: d.name):
            if not device.network:
                continue
            try:
                net = ipaddress.ip_network(device.network, strict=False)
            except ValueError:
                continue
            if net.num_addresses == 1:
                by_ip.setdefault(str(net.network_address), device)
            else:
                networks.append((net, device))
        networks.sort(key=lambda item: -item[0].prefixlen)  # narrowest first; stable by name
        by_mac = {d.mac: d for d in sorted(self.devices.values(), key=lambda d: d.name) if d.mac}
        object.__setattr__(self, "_by_ip", by_ip)
        object.__setattr__(self, "_by_mac", by_mac)
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_cache", {})

    def device_for_ip(self, ip: str) -> Device | None:
        """The device at `ip`: an exact IP beats the narrowest containing network."""
        found = self._by_ip.get(ip)
        if found is not None:
            return found
        cache = self._cache
        if ip in cache:
            return cache[ip]
        found = self._lookup(ip)
        if len(cache) >= _IP_CACHE_MAX:
            cache.clear()
        cache[ip] = found
        return found

    def _lookup(self, ip: str) -> Device | None:
        text = normalise_ip(ip)
        if text is None:
            return None
        found = self._by_ip.get(text)
        if found is not None:
            return found
        addr = ipaddress.ip_address(text)
        for net, device in self._networks:
            if net.version == addr.version and addr in net:
                return device
        return None

    def device_for_mac(self, mac: str) -> Device | None:
        normal = normalise_mac(mac)
        return self._by_mac.get(normal) if normal else None

    def user_state(self, username: str, today: date) -> str:
        """active | no_consent | banned | revoked | unknown."""
        user = self.users.get(username)
        return "unknown" if user is None else effective_state(user, today)


def normalise_mac(mac: str) -> str | None:
    """'AA-BB-CC-DD-EE-FF', 'aabb.ccdd.eeff', 'aabbccddeeff' -> 'aa:bb:cc:dd:ee:ff'; None if not a MAC."""
    digits = "".join(ch for ch in mac.strip().lower() if ch not in ":-. ")
    if len(digits) != 12 or any(ch not in "0123456789abcdef" for ch in digits):
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2))


# -- reading ---------------------------------------------------------------
USER_COLUMNS_SQL = ("username, full_name, role, group_name, year_group, consent, consent_at, status, "
              "status_until, status_reason, created_at, updated_at")
DEVICE_COLUMNS_SQL = "name, mac, network, device_class, assigned_user, created_at, updated_at"


def user_from_row(row: Any) -> User:
    return User(row[0], row[1], row[2], row[3], row[4] or "", bool(row[5]), parse_iso(row[6]),
                row[7], parse_date(row[8]), row[9] or "", parse_iso(row[10]), parse_iso(row[11]))


def device_from_row(row: Any) -> Device:
    return Device(row[0], row[1], row[2] or "", row[3], row[4], parse_iso(row[5]),
                  parse_iso(row[6]))


async def list_users(conn: aiosqlite.Connection) -> list[User]:
    async with conn.execute(f"SELECT {USER_COLUMNS_SQL} FROM users ORDER BY username") as cursor:
        return [user_from_row(row) for row in await cursor.fetchall()]


async def list_devices(conn: aiosqlite.Connection) -> list[Device]:
    async with conn.execute(f"SELECT {DEVICE_COLUMNS_SQL} FROM devices ORDER BY name") as cursor:
        return [device_from_row(row) for row in await cursor.fetchall()]


async def get_user(conn: aiosqlite.Connection, name: str) -> User | None:
    async with conn.execute(f"SELECT {USER_COLUMNS_SQL} FROM users WHERE username = ?", (name,)) as cur:
        row = await cur.fetchone()
    return None if row is None else user_from_row(row)


async def load_snapshot(conn: aiosqlite.Connection) -> RegisterSnapshot:
    users = await list_users(conn)
    devices = await list_devices(conn)
    return RegisterSnapshot({u.username: u for u in users}, {d.name: d for d in devices})


def load_snapshot_sync(conn: sqlite3.Connection) -> RegisterSnapshot:
    users = [user_from_row(r) for r in conn.execute(f"SELECT {USER_COLUMNS_SQL} FROM users")]
    devices = [device_from_row(r) for r in conn.execute(f"SELECT {DEVICE_COLUMNS_SQL} FROM devices")]
    return RegisterSnapshot({u.username: u for u in users}, {d.name: d for d in devices})


# -- changing --------------------------------------------------------------
async def _change(conn: aiosqlite.Connection, username: str, by: str, reason: str, action: str,
                  now: datetime | None, update: dict[str, Any], require_reason: bool) -> User:
    if not by.strip():
        raise RegisterError(f"{action}: say who makes the change (--by)")
    if require_reason and not reason.strip():
        raise RegisterError(f"{action}: a reason is required (it goes on the audit trail)")
    now = now or datetime.now(UTC)
    async with transaction(conn):
        user = await get_user(conn, username)
        if user is None:
            raise RegisterError(f"no user {username!r} in the register")
        if action == "lift" and user.status == "active":
            raise RegisterError(f"{username} is neither banned nor revoked: nothing to lift")
        before = {key: _plain(getattr(user, key)) for key in update}
        after = {key: _plain(value) for key, value in update.items()}
        columns = ", ".join(f"{key} = ?" for key in after)
        await conn.execute(f"UPDATE users SET {columns}, updated_at = ? WHERE username = ?",
                           (*after.values(), utc_iso(now), username))
        await audit(conn, actor=by, action=f"user.{action}", subject=f"user:{username}",
                    details={"before": before, "after": after}, reason=reason, now=now)
    return replace(user, **update, updated_at=now.replace(microsecond=0))


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


async def set_consent(conn: aiosqlite.Connection, username: str, given: bool, by: str,
                      reason: str = "", *, now: datetime | None = None) -> User:
    """Record that parental consent was given (or withdrawn)."""
    moment = now or datetime.now(UTC)
    update = {"consent": given, "consent_at": moment.replace(microsecond=0) if given else None}
    return await _change(conn, username, by, reason, "consent" if given else "consent_withdrawn",
                         moment, update, require_reason=False)


async def revoke(conn: aiosqlite.Connection, username: str, by: str, reason: str, *,
                 now: datetime | None = None) -> User:
    """Withdraw internet access until lifted."""
    update = {"status": "revoked", "status_until": None, "status_reason": reason}
    return await _change(conn, username, by, reason, "revoke", now, update, require_reason=True)


async def ban(conn: aiosqlite.Connection, username: str, until: date | None, by: str, reason: str,
              *, now: datetime | None = None) -> User:
    """Ban up to and including `until` (None: until lifted)."""
    moment = now or datetime.now(UTC)
    if until is not None and until < moment.date():
        raise RegisterError(f"ban: --until {until.isoformat()} is already past")
    update = {"status": "banned", "status_until": until, "status_reason": reason}
    return await _change(conn, username, by, reason, "ban", moment, update, require_reason=True)


async def lift(conn: aiosqlite.Connection, username: str, by: str, reason: str, *,
               now: datetime | None = None) -> User:
    """End a ban or a revocation."""
    update = {"status": "active", "status_until": None, "status_reason": ""}
    return await _change(conn, username, by, reason, "lift", now, update, require_reason=True)
