"""Who is asking: user, device and filter group from the login, the register and the networks.

Precedence (DEMO-SCHOOL.md, Ingham policy section 4.4):
 1. a logged-in user (proxy login) takes their own group;
 2. a school single-user device (or a loaned device) counts as its assigned user;
 3. otherwise the device's network group (the register's device, else the network's);
 4. otherwise the guest group.
A client outside every configured network is `known=False`: it is refused.
The register snapshot is in-memory, so this is pure and cheap per request;
`IdentityCache` keeps the answer per client connection for the proxy, which
asks again on every request of a keep-alive connection.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from collections.abc import Hashable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from config.schema import Settings
from proxy.policy import Identity

logger = logging.getLogger(__name__)

ASSIGNED_CLASSES = frozenset({"school_single_user", "loaned"})
CACHE_CONNECTIONS = 20_000     # client connections remembered by IdentityCache (oldest dropped first)


class Register(Protocol):
    """What identity needs of `proxy.register.RegisterSnapshot`."""

    @property
    def users(self) -> Mapping[str, Any]: ...

    def device_for_ip(self, ip: str) -> Any | None: ...

    def device_for_mac(self, mac: str) -> Any | None: ...

    def user_state(self, username: str, today: dt.date) -> str: ...


class EmptyRegister:
    """A register with nobody in it (before `schoolgate init`, and in unit tests)."""

    @property
    def users(self) -> Mapping[str, Any]:
        return {}

    def device_for_ip(self, ip: str) -> None:
        return None

    def device_for_mac(self, mac: str) -> None:
        return None

    def user_state(self, username: str, today: dt.date) -> str:
        return "unknown"


def identify(settings: Settings, register: Register, client_ip: str, login: str | None = None,
             today: dt.date | None = None, arp: Mapping[str, str] | None = None) -> Identity:
    """The identity of a client at `client_ip`, logged in as `login` (or not).

    `arp` maps client IPs to MACs (the gateway's ARP table), for devices registered by MAC.
    """
    try:
        addr = ipaddress.ip_address(client_ip.split("%", 1)[0])
    except ValueError:
        return Identity(client_ip=client_ip, known=False, group=settings.guest_group)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
        client_ip = str(addr)
    network = settings.network_for(addr)
    if network is None:
        return Identity(client_ip=client_ip, known=False, group=settings.guest_group)
    today = today or dt.datetime.now(settings.school.timezone).date()
    device = register.device_for_ip(client_ip)
    if device is None and arp:
        mac = arp.get(client_ip)
        device = register.device_for_mac(mac) if mac else None
    device_class = device.device_class if device is not None else network.device_class
    base = Identity(client_ip=client_ip, known=True, group=network.group or settings.guest_group,
                    device=device.name if device is not None else None, device_class=device_class,
                    network=network.name, access=network.access, tls=network.tls,
                    source="device" if device is not None else "network")
    username = login
    source = "login"
    if username is None and device is not None and device_class in ASSIGNED_CLASSES and device.assigned_user:
        username, source = device.assigned_user, "assigned"
    if username is not None:
        user = register.users.get(username)
        if user is None:
            return replace(base, user=username, user_state="unknown", source=source)
        group = user.group_name if user.group_name in settings.groups else settings.guest_group
        return replace(base, group=group, user=username, role=user.role,
                       user_state=register.user_state(username, today), source=source)
    if network.group is not None:
        return base
    return replace(base, source="guest")


class IdentityCache:
    """Identities per client connection and login, each valid for one `key` (the caller's generation,
    date and client address): a different key is a miss.  Forget a connection when it closes."""

    def __init__(self, limit: int = CACHE_CONNECTIONS) -> None:
        self.limit = limit
        self._by_conn: dict[Hashable, dict[str | None, tuple[Hashable, Identity]]] = {}

    def get(self, conn: Hashable, login: str | None, key: Hashable) -> Identity | None:
        logins = self._by_conn.get(conn)
        if logins is None:
            return None
        entry = logins.get(login)
        if entry is None or entry[0] != key:
            return None
        return entry[1]

    def put(self, conn: Hashable, login: str | None, key: Hashable, who: Identity) -> None:
        logins = self._by_conn.get(conn)
        if logins is None:
            if len(self._by_conn) >= self.limit:   # connections that never said goodbye: oldest first
                del self._by_conn[next(iter(self._by_conn))]
            logins = self._by_conn[conn] = {}
        elif login not in logins and len(logins) >= 8:   # one connection trying many logins
            logins.clear()
        logins[login] = (key, who)

    def forget(self, conn: Hashable) -> None:
        self._by_conn.pop(conn, None)

    def __len__(self) -> int:
        return len(self._by_conn)
