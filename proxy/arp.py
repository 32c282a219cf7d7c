"""MAC addresses of clients on the gateway's own networks, from the kernel's ARP table.

The device register may name a device by MAC (DHCP moves IPs around). On a
gateway the kernel knows each LAN client's MAC: `/proc/net/arp` maps IPv4
addresses to hardware addresses.  The runtime reads it with every refresh
(a few seconds), never per request.
"""
from __future__ import annotations

import logging
from pathlib import Path

from proxy.register import normalise_mac

logger = logging.getLogger(__name__)

ARP_TABLE = Path("/proc/net/arp")
_INCOMPLETE = "00:00:00:00:00:00"


def read_arp_table(path: Path = ARP_TABLE) -> dict[str, str]:
    """IPv4 address -> normalised MAC for every complete entry; empty when unreadable."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    table: dict[str, str] = {}
    for line in lines[1:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        ip, flags, mac = fields[0], fields[2], fields[3]
        normal = normalise_mac(mac)
        if normal is None or normal == _INCOMPLETE or flags == "0x0":
            continue
        table[ip] = normal
    return table
