"""Identify: who is asking (user, device, group) for every connection and request.

Refuses clients outside the configured networks at connect time, so
Schoolgate is never an open proxy, and records the `Identity` of each flow
in `flow.metadata` for the addons after it.  Proxy login comes from
mitmproxy's own `proxyauth` addon (htpasswd or LDAP), which runs before this.
The engine keeps each connection's identity (per login) while nothing it
depends on changes; it is forgotten when the client disconnects.
"""
from __future__ import annotations

import logging

from mitmproxy import connection, http

from addons.runtimeref import ANSWERED, IDENTITY, RuntimeRef
from proxy.policy import Identity

logger = logging.getLogger(__name__)


class Identify:
    def __init__(self, ref: RuntimeRef) -> None:
        self.ref = ref

    def client_connected(self, client: connection.Client) -> None:
        if self.ref.runtime is None:   # still starting (or stopping): nobody passes unfiltered
            client.error = "Schoolgate is not running yet"
            return
        ip = client.peername[0] if client.peername else ""
        rt = self.ref.rt
        who = rt.engine.identify(ip, None, rt.clock(), conn=client.id)
        if not who.known:
            logger.warning("refused %s: not on any of the school's networks", ip)
            client.error = "Schoolgate: client outside the school's networks"

    def client_disconnected(self, client: connection.Client) -> None:
        if self.ref.runtime is not None:
            self.ref.runtime.engine.forget_connection(client.id)

    def _identify(self, flow: http.HTTPFlow) -> Identity:
        client = flow.client_conn
        ip = client.peername[0] if client.peername else ""
        auth = flow.metadata.get("proxyauth")
        login = auth[0] if isinstance(auth, tuple) and auth and auth[0] else None
        rt = self.ref.rt
        # kept per connection and login until the register, ARP table, overrides or date change
        who = rt.engine.identify(ip, login, rt.clock(), conn=client.id)
        flow.metadata[IDENTITY] = who
        return who

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self.requestheaders(flow)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            return
        if self.ref.runtime is None:
            flow.metadata[ANSWERED] = True
            flow.response = http.Response.make(503, "The school's filter is starting; try again in a moment.\n",
                                               {"Content-Type": "text/plain; charset=utf-8", "Retry-After": "5"})
            return
        self._identify(flow)
