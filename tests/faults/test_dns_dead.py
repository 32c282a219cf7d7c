"""Every upstream DNS server is dead: SERVFAIL (never a hang, never NXDOMAIN), blocked names still blocked,
the proxy still filters, and the log says why."""
from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, DNSRecord

from proxy.cmd_dns import start_dns
from tests.faults.helpers import free_port, start_school


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A UDP port that reads queries and never answers (a resolver that hangs)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def _ask(port: int, name: str, timeout: float = 5.0) -> DNSRecord:
    """One UDP query from 127.0.0.1 (a KS2 laptop in the demo school); fails the test on no answer."""
    q = DNSRecord.question(name, "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(q.pack(), ("127.0.0.1", port))
        while True:
            reply = DNSRecord.parse(sock.recvfrom(4096)[0])
            if reply.header.id == q.header.id:
                return reply


async def test_all_upstreams_dead(tmp_path: Path, blackhole: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    refused = free_port()                                   # nothing listens: ICMP port unreachable
    school = await start_school(tmp_path, replace={
        "enabled = false\nlisten_host": "enabled = true\ntimeout_s = 0.3\nlisten_host",
        'upstreams = ["127.0.0.53"]': f'upstreams = ["127.0.0.1:{refused}", "127.0.0.1:{blackhole}"]'})
    server = await start_dns(school.runtime, listen_port=0)
    school.runtime.dns_counts = server.resolver.counts
    port = server.address[1]
    try:
        answers = await asyncio.gather(*(asyncio.to_thread(_ask, port, f"site{i}.example.org") for i in range(5)))
        assert {RCODE[a.header.rcode] for a in answers} == {"SERVFAIL"}
        assert all(not a.rr for a in answers)
        blocked = await asyncio.to_thread(_ask, port, "www.bet365.com")
        assert RCODE[blocked.header.rcode] == "NOERROR"
        assert [str(rr.rdata) for rr in blocked.rr if rr.rtype == QTYPE.A] == ["127.0.0.1"]   # the block page
        pupil = school.client("127.0.2.40")
        assert (await pupil.get("http://bet365.com/", headers={"Connection": "close"})).status_code == 403
        assert (await pupil.get("http://example.com/", headers={"Connection": "close"})).status_code == 200
        again = await asyncio.to_thread(_ask, port, "site0.example.org")     # not cached as an answer
        assert RCODE[again.header.rcode] == "SERVFAIL"
    finally:
        await server.stop()
        await school.close()
    counts = server.resolver.counts
    assert counts["servfail"] == 6 and counts["blocked"] == 1
    assert "no upstream answered site0.example.org 1" in caplog.text
    assert f"127.0.0.1:{refused}: ConnectionRefusedError" in caplog.text
    assert f"127.0.0.1:{blackhole}: TimeoutError" in caplog.text
