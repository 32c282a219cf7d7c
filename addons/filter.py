"""Filter: the policy decision for every request, and the block page when it says no.

Calls `proxy.engine.Engine.evaluate` (which calls the one pure policy
function) and keeps the `Evaluation` in `flow.metadata` for the addons
after it.  A blocked request is answered here with the page for its kind,
and never reaches the upstream server.

CONNECT: clients whose TLS is intercepted are decided later, on each
decrypted request (so they can be shown a block page), except for what the
CONNECT itself gives away (a pupil's CONNECT to a port other than 443).
Passed-through clients are decided here on the CONNECT host, and a blocked
one gets its connection refused (403), which is logged.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Mapping
from types import MappingProxyType

from mitmproxy import http

from addons.blockresponse import block_response
from addons.runtimeref import ANSWERED, EVALUATION, RuntimeRef, identity_of
from proxy.decision import Page
from proxy.policy import Identity, should_intercept

logger = logging.getLogger(__name__)


class Filter:
    def __init__(self, ref: RuntimeRef) -> None:
        self.ref = ref

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        who = identity_of(flow)
        if flow.response is not None or who is None:
            return
        rt = self.ref.rt
        host, port = flow.request.host, flow.request.port
        dest = await _resolve_if_needed(who, host)
        ev = rt.engine.evaluate(who, f"{host}:{port}", method="CONNECT", at=rt.clock(), connect_port=port,
                                dest_ip=dest)
        intercept = should_intercept(rt.settings, who, ev.host)
        decided_here = (not intercept) or ev.decision.rule == "circumvention.connect_port" \
            or ev.decision.page in (Page.REFUSED, Page.DEVICE_NOT_ALLOWED)
        if not decided_here:
            return
        flow.metadata[EVALUATION] = ev
        if ev.decision.blocked:
            flow.metadata[ANSWERED] = True
            flow.response = http.Response.make(
                403, f"Blocked by the school's filter: {ev.decision.reason}\n",
                {"Content-Type": "text/plain; charset=utf-8", "Connection": "close"})

    async def request(self, flow: http.HTTPFlow) -> None:
        who = identity_of(flow)
        if flow.response is not None or who is None:
            return
        rt = self.ref.rt
        req = flow.request
        dest = await _resolve_if_needed(who, req.host) if who.access == "internet_only" else None
        ev = rt.engine.evaluate(who, req.url, method=req.method, at=rt.clock(), headers=_doh_headers(req.headers),
                                dest_ip=dest)
        flow.metadata[EVALUATION] = ev
        if ev.decision.blocked:
            flow.metadata[ANSWERED] = True
            flow.response = block_response(rt, ev, req.url)


_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


def _doh_headers(headers: http.Headers) -> Mapping[str, str]:
    """The headers to give the engine: all of them when a value mentions "dns", else none.

    The engine reads headers for one rule only, DNS-over-HTTPS by media type
    (`proxy.circumvention`: Content-Type or Accept naming a DNS type), and skips
    every value without "dns" in it.  Walking mitmproxy's case-insensitive
    `Headers` through the Mapping interface costs a scan of every field per key
    (~50 us for a browser's dozen headers); this scans the raw fields once.
    `bytes.lower()` lower-cases ASCII only, which is enough: no other character
    lower-cases to "d", "n" or "s".
    """
    for _name, value in headers.fields:
        if b"dns" in value.lower():
            return headers
    return _NO_HEADERS


async def _resolve_if_needed(who: Identity, host: str) -> str | None:
    """An internet-only device's destination address, to keep it off the internal network."""
    if who.access != "internet_only":
        return None
    try:
        ipaddress.ip_address(host.strip("[]"))
        return None  # a literal: the engine checks it itself
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return None
    return str(infos[0][4][0]) if infos else None
