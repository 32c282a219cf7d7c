"""Identify: who is asking (user, device, group) for every connection and request.

Refuses clients outside the configured networks at connect time, so
Schoolgate is never an open proxy, and records the `Identity` of each flow
in `flow.metadata` for the addons after it.  Proxy login comes from
mitmproxy's own `proxyauth` addon (htpasswd or LDAP), which runs before this.
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
        who = self.ref.rt.engine.identify(ip)
        if not who.known:
            logger.warning("refused %s: not on any of the school's networks", ip)
            client.error = "Schoolgate: client outside the school's networks"

    def _identify(self, flow: http.HTTPFlow) -> Identity:
        ip = flow.client_conn.peername[0] if flow.client_conn.peername else ""
        auth = flow.metadata.get("proxyauth")
        login = auth[0] if isinstance(auth, tuple) and auth and auth[0] else None
        who = self.ref.rt.engine.identify(ip, login, self.ref.rt.clock())
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
