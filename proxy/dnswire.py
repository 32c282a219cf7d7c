"""DNS wire format, by hand, for the resolver's hot path.

`parse_query` reads a client's query without building objects for it: the
header, the one question (its name kept byte for byte, so 0x20 case
randomisation comes back as sent), and an optional EDNS OPT record.  Anything
else (a response, several questions, answer or authority records in a query,
compression in the question, a name longer than 255 bytes, trailing bytes) is
a `WireError` carrying the rcode to answer with, or `None` when the packet is
not worth an answer at all.  The answer builders write the few answers the
resolver makes itself (addresses, NXDOMAIN/NODATA with an SOA, errors,
truncation) straight into bytes; dnslib is used only off the hot path.
"""
from __future__ import annotations

import struct

RCODE_NOERROR = 0
RCODE_FORMERR = 1
RCODE_SERVFAIL = 2
RCODE_NXDOMAIN = 3
RCODE_NOTIMP = 4
RCODE_REFUSED = 5

QTYPE_A = 1
QTYPE_NS = 2
QTYPE_CNAME = 5
QTYPE_SOA = 6
QTYPE_AAAA = 28
QTYPE_OPT = 41
CLASS_IN = 1

MAX_QUERY = 4096            # a query longer than this is not a query
EDNS_PAYLOAD = 1232         # what we advertise (the DNS flag day 2020 value)
MIN_UDP = 512

_HEADER = struct.Struct("!HHHHHH")
_RR_FIXED = struct.Struct("!HHIH")      # type, class, ttl, rdlength
_TTL = struct.Struct("!I")
_FLAG_QR = 0x8000
_FLAG_TC = 0x0200
_FLAG_RD = 0x0100
_FLAG_RA = 0x0080
_FLAG_CD = 0x0010
_DO = 0x8000


class WireError(Exception):
    """A query that gets an error answer (`rcode`) rather than being resolved."""

    def __init__(self, rcode: int, reason: str) -> None:
        super().__init__(reason)
        self.rcode = rcode


class Query:
    """One client query, as `parse_query` read it."""

    __slots__ = ("raw", "id", "flags", "name", "qtype", "qclass", "qend", "edns", "do", "udp_size")

    def __init__(self, raw: bytes, id: int, flags: int, name: str, qtype: int, qclass: int, qend: int,
                 edns: bool, do: bool, udp_size: int) -> None:
        self.raw = raw              # the packet as received
        self.id = id
        self.flags = flags
        self.name = name            # lower-case text, no trailing dot ("" for the root)
        self.qtype = qtype
        self.qclass = qclass
        self.qend = qend            # offset just after the question
        self.edns = edns
        self.do = do                # EDNS "DNSSEC OK"
        self.udp_size = udp_size    # the largest UDP answer the client takes

    @property
    def question(self) -> bytes:
        """The question section exactly as the client sent it."""
        return self.raw[12:self.qend]

    def __repr__(self) -> str:
        return f"Query(id={self.id}, name={self.name!r}, qtype={self.qtype}, edns={self.edns})"


def parse_query(data: bytes) -> Query | None:
    """Read a query; None when it deserves no answer; raises `WireError` when it gets an error answer."""
    size = len(data)
    if size < 12:
        return None
    qid, flags, qd, an, ns, ar = _HEADER.unpack_from(data, 0)
    if flags & _FLAG_QR:
        return None                                 # a response: never answer one (no loops)
    if size > MAX_QUERY:
        raise WireError(RCODE_FORMERR, "oversized query")
    if (flags >> 11) & 0xF:
        raise WireError(RCODE_NOTIMP, "only standard queries")
    if qd != 1 or an or ns or ar > 1:
        raise WireError(RCODE_FORMERR, "one question, no records but one OPT")
    labels = []
    pos = 12
    while True:
        if pos >= size:
            raise WireError(RCODE_FORMERR, "truncated name")
        length = data[pos]
        if length == 0:
            pos += 1
            break
        if length > 63:
            raise WireError(RCODE_FORMERR, "compressed or bad label")
        end = pos + 1 + length
        labels.append(data[pos + 1:end])
        pos = end
        if pos - 12 > 255:
            raise WireError(RCODE_FORMERR, "name too long")
    if pos + 4 > size:
        raise WireError(RCODE_FORMERR, "truncated question")
    qtype = (data[pos] << 8) | data[pos + 1]
    qclass = (data[pos + 2] << 8) | data[pos + 3]
    qend = pos + 4
    edns = do = False
    udp_size = MIN_UDP
    if ar:
        # OPT: root name, type 41, class = payload size, ttl = ext-rcode/version/flags, rdata
        if qend + 11 > size or data[qend] != 0:
            raise WireError(RCODE_FORMERR, "bad additional record")
        rtype, payload, ttl, rdlen = _RR_FIXED.unpack_from(data, qend + 1)
        if rtype != QTYPE_OPT or qend + 11 + rdlen != size:
            raise WireError(RCODE_FORMERR, "bad OPT record")
        if (ttl >> 16) & 0xFF:
            raise WireError(RCODE_FORMERR, "EDNS version not supported")
        edns = True
        do = bool(ttl & _DO)
        udp_size = min(max(payload, MIN_UDP), 65535)
    elif qend != size:
        raise WireError(RCODE_FORMERR, "trailing bytes")
    name = b".".join(labels).lower().decode("latin-1")
    return Query(data, qid, flags, name, qtype, qclass, qend, edns, do, udp_size)


def _opt(do: bool) -> bytes:
    return b"\x00" + _RR_FIXED.pack(QTYPE_OPT, EDNS_PAYLOAD, _DO if do else 0, 0)


def _flags(query_flags: int, rcode: int, aa: bool = False) -> int:
    return _FLAG_QR | (query_flags & (_FLAG_RD | _FLAG_CD)) | _FLAG_RA | (0x0400 if aa else 0) | rcode


def error_answer(data: bytes, rcode: int) -> bytes | None:
    """An error answer to a packet that may not parse: id and RD copied, no sections."""
    if len(data) < 12 or data[2] & 0x80:
        return None
    flags = ((data[2] << 8) | data[3])
    out = _HEADER.pack((data[0] << 8) | data[1], _FLAG_QR | (flags & 0x7900) | _FLAG_RA | rcode, 0, 0, 0, 0)
    return out


def rcode_answer(q: Query, rcode: int, authority: bytes = b"", aa: bool = False) -> bytes:
    """An answer with the question, no answer records, an optional authority section (one RR)."""
    ns = 1 if authority else 0
    ar = 1 if q.edns else 0
    head = _HEADER.pack(q.id, _flags(q.flags, rcode, aa), 1, 0, ns, ar)
    return b"".join((head, q.raw[12:q.qend], authority, _opt(q.do) if q.edns else b""))


def records_answer(q: Query, rdatas: list[bytes], ttl: int, rtype: int | None = None) -> bytes:
    """NOERROR with one answer record per rdata, owned by the question's name."""
    rtype = q.qtype if rtype is None else rtype
    flags = _FLAG_QR | (q.flags & (_FLAG_RD | _FLAG_CD)) | _FLAG_RA
    parts = [_HEADER.pack(q.id, flags, 1, len(rdatas), 0, 1 if q.edns else 0), q.raw[12:q.qend]]
    for rdata in rdatas:
        parts.append(b"\xc0\x0c" + _RR_FIXED.pack(rtype, CLASS_IN, ttl, len(rdata)) + rdata)
    if q.edns:
        parts.append(_opt(q.do))
    return b"".join(parts)


def encode_name(name: str) -> bytes:
    """A text name in wire form (no compression)."""
    out = bytearray()
    for label in name.strip(".").split("."):
        if label:
            raw = label.encode("idna") if not label.isascii() else label.encode()
            out.append(len(raw))
            out += raw
    out.append(0)
    return bytes(out)


def soa_record(ttl: int, mname: str = "schoolgate.local", rname: str = "hostmaster.schoolgate.local") -> bytes:
    """An SOA record owned by the question's name (a pointer to offset 12), for negative answers."""
    rdata = encode_name(mname) + encode_name(rname) + struct.pack("!IIIII", 1, 3600, 600, 86400, ttl)
    return b"\xc0\x0c" + _RR_FIXED.pack(QTYPE_SOA, CLASS_IN, ttl, len(rdata)) + rdata


def truncated(q: Query) -> bytes:
    """The header and question with TC set: the client retries over TCP."""
    head = _HEADER.pack(q.id, _flags(q.flags, RCODE_NOERROR) | _FLAG_TC, 1, 0, 0, 1 if q.edns else 0)
    return b"".join((head, q.raw[12:q.qend], _opt(q.do) if q.edns else b""))


def for_client(answer: bytes, q: Query, udp: bool) -> bytes:
    """`answer` as sent: truncated when it does not fit the client's UDP size."""
    if udp and len(answer) > q.udp_size:
        return truncated(q)
    return answer


def response_rcode(data: bytes) -> int:
    return data[3] & 0x0F if len(data) >= 4 else RCODE_SERVFAIL


def is_truncated(data: bytes) -> bool:
    return len(data) >= 4 and bool(data[2] & 0x02)


def skip_name(data: bytes, pos: int) -> int:
    """The offset after a (possibly compressed) name starting at `pos`."""
    while True:
        length = data[pos]
        if length == 0:
            return pos + 1
        if length >= 0xC0:
            return pos + 2
        if length > 63:
            raise ValueError("bad label")
        pos += 1 + length


def record_ttls(data: bytes) -> tuple[list[int], list[int]]:
    """Offsets and values of the TTL of every answer and authority record (and additional,
    except OPT) of a response; raises ValueError when the response does not parse."""
    _, _, qd, an, ns, ar = _HEADER.unpack_from(data, 0)
    pos = 12
    for _ in range(qd):
        pos = skip_name(data, pos) + 4
    offsets: list[int] = []
    ttls: list[int] = []
    for _ in range(an + ns + ar):
        pos = skip_name(data, pos)
        if pos + 10 > len(data):
            raise ValueError("truncated record")
        rtype, _, ttl, rdlen = _RR_FIXED.unpack_from(data, pos)
        if rtype != QTYPE_OPT:
            offsets.append(pos + 4)
            ttls.append(ttl)
        pos += 10 + rdlen
    if pos > len(data):
        raise ValueError("truncated record data")
    return offsets, ttls


def set_ttls(data: bytearray, offsets: list[int], ttls: list[int]) -> None:
    pack = _TTL.pack_into
    for off, ttl in zip(offsets, ttls, strict=True):
        pack(data, off, ttl)


def restamp(answer: bytes | bytearray, q: Query) -> bytes:
    """A stored answer for another client: its id, RD/CD flags and question (case as sent)."""
    out = bytearray(answer)
    out[0] = q.id >> 8
    out[1] = q.id & 0xFF
    out[2] = (out[2] & ~0x01) | ((q.flags >> 8) & 0x01)     # RD
    out[3] = (out[3] & ~0x10) | (q.flags & 0x10)             # CD
    out[12:q.qend] = q.raw[12:q.qend]
    return bytes(out)
