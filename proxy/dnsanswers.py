"""The answers the resolver makes itself: blocked names, canaries, local names, safe-search CNAMEs.

Blocked names (`[dns] block_answer`):
- `blockpage`: A (or AAAA) is the proxy's own address, so a plain HTTP visit
  shows the block page; the other address family and other types get NODATA.
- `zero`: A `0.0.0.0`, AAAA `::`, other types NODATA.
- `nxdomain`: NXDOMAIN with an SOA, for every type.
All with the short `block_ttl`, and an SOA in negative answers so that
clients cache them for that long only.

Canaries (the same for everyone): `use-application-dns.net` (Firefox turns
its DNS-over-HTTPS off), `mask.icloud.com` and `mask-h2.icloud.com` (iCloud
Private Relay stays off) answer NXDOMAIN; `_dns.resolver.arpa` (RFC 9462
discovery of an encrypted resolver) answers NODATA.  The block page's host
name (`[proxy] block_page_name`) resolves to the proxy.

A safe-search rewrite answers `name CNAME target` followed by the target's
own records from the upstream.
"""
from __future__ import annotations

import ipaddress
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass

from dnslib import CNAME, EDNS0, QTYPE, RR, DNSRecord

from config.schema import DnsSettings
from proxy.dnswire import (
    QTYPE_A,
    QTYPE_AAAA,
    QTYPE_CNAME,
    RCODE_NOERROR,
    RCODE_NXDOMAIN,
    Query,
    encode_name,
    rcode_answer,
    records_answer,
    restamp,
    soa_record,
)

logger = logging.getLogger(__name__)

NXDOMAIN_CANARIES = frozenset({"use-application-dns.net", "mask.icloud.com", "mask-h2.icloud.com"})
NODATA_CANARIES = frozenset({"_dns.resolver.arpa"})
CNAME_TTL = 300

Answerer = Callable[[Query], bytes]


@dataclass(frozen=True, slots=True)
class LocalName:
    """A name the resolver answers itself, with how it is logged."""

    answer: Answerer
    action: str
    rule: str


class Answers:
    """Builds the resolver's own answers for one configuration."""

    def __init__(self, dns: DnsSettings, proxy_address: str | None, block_page_name: str = "") -> None:
        self.mode = dns.block_answer
        self.ttl = dns.block_ttl
        self._soa = soa_record(self.ttl)
        self._v4: bytes | None = None
        self._v6: bytes | None = None
        if proxy_address:
            try:
                addr = ipaddress.ip_address(proxy_address)
            except ValueError:
                addr = None
            if addr is not None and not addr.is_unspecified:
                if addr.version == 4:
                    self._v4 = addr.packed
                else:
                    self._v6 = addr.packed
        if self.mode == "blockpage" and self._v4 is None and self._v6 is None:
            logger.warning("the proxy listens on %r, which is no address to send blocked names to; "
                           "blocked names get 0.0.0.0 / :: instead", proxy_address)
            self.mode = "zero"
        self.local: dict[str, LocalName] = {}
        for name in NXDOMAIN_CANARIES:
            self.local[name] = LocalName(self.nxdomain, "block", "dns.canary")
        for name in NODATA_CANARIES:
            self.local[name] = LocalName(self.nodata, "block", "dns.canary")
        if block_page_name and (self._v4 or self._v6):
            self.local[block_page_name.lower().rstrip(".")] = LocalName(self.proxy_address, "allow", "dns.local")

    def nxdomain(self, q: Query) -> bytes:
        return rcode_answer(q, RCODE_NXDOMAIN, self._soa, aa=True)

    def nodata(self, q: Query) -> bytes:
        return rcode_answer(q, RCODE_NOERROR, self._soa, aa=True)

    def proxy_address(self, q: Query) -> bytes:
        if q.qtype == QTYPE_A and self._v4:
            return records_answer(q, [self._v4], self.ttl)
        if q.qtype == QTYPE_AAAA and self._v6:
            return records_answer(q, [self._v6], self.ttl)
        return self.nodata(q)

    def blocked(self, q: Query) -> bytes:
        """The answer for a name the policy blocks, as `block_answer` says."""
        mode = self.mode
        if mode == "nxdomain":
            return self.nxdomain(q)
        if mode == "blockpage":
            return self.proxy_address(q)
        if q.qtype == QTYPE_A:
            return records_answer(q, [b"\x00\x00\x00\x00"], self.ttl)
        if q.qtype == QTYPE_AAAA:
            return records_answer(q, [b"\x00" * 16], self.ttl)
        return self.nodata(q)


def target_query(target: str, qtype: int, qclass: int, edns: bool) -> bytes:
    """A recursive query for `target` (the upstream query of a safe-search rewrite)."""
    head = struct.pack("!HHHHHH", 0, 0x0100, 1, 0, 0, 1 if edns else 0)
    opt = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0) if edns else b""
    return head + encode_name(target) + struct.pack("!HH", qtype, qclass) + opt


def cname_only(q: Query, target: str, ttl: int) -> bytes:
    return records_answer(q, [encode_name(target)], ttl, rtype=QTYPE_CNAME)


def cname_chain(q: Query, target: str, upstream_answer: bytes, ttl: int) -> bytes:
    """`q.name CNAME target`, then the target's records from the upstream's answer."""
    up = DNSRecord.parse(upstream_answer)
    reply = DNSRecord.parse(_question_only(q))
    reply.header.qr = 1
    reply.header.ra = 1
    reply.header.rcode = up.header.rcode
    reply.header.ar = 0
    reply.ar = []
    owner = reply.q.qname
    target_ttls = [rr.ttl for rr in up.rr]
    ttl = min([ttl, *target_ttls]) if target_ttls else ttl
    reply.add_answer(RR(owner, QTYPE.CNAME, ttl=ttl, rdata=CNAME(target)))
    for rr in up.rr:
        reply.add_answer(rr)
    for rr in up.auth:
        reply.add_auth(rr)
    if q.edns:
        reply.add_ar(EDNS0(udp_len=1232, flags="do" if q.do else ""))
    return restamp(reply.pack(), q)


def _question_only(q: Query) -> bytes:
    head = bytearray(q.raw[:12])
    head[10] = head[11] = 0
    return bytes(head) + q.raw[12:q.qend]
