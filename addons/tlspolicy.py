"""TlsPolicy: decrypt school devices, pass staff- and visitor-owned devices through.

School devices trust the school's CA and are intercepted, so the full URL
is filtered and search terms are seen.  Devices whose network says
`tls = "passthrough"`, and staff visiting the no-intercept list (banking,
health, government), are not decrypted: they are decided on the SNI or
CONNECT host only (the filter addon answers their CONNECT).
"""
from __future__ import annotations

import logging

from mitmproxy import tls

from addons.runtimeref import RuntimeRef
from proxy.policy import should_intercept

logger = logging.getLogger(__name__)


class TlsPolicy:
    def __init__(self, ref: RuntimeRef) -> None:
        self.ref = ref

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        if data.ignore_connection:
            return
        client = data.context.client
        ip = client.peername[0] if client.peername else ""
        host = data.client_hello.sni or (data.context.server.address[0] if data.context.server.address else "")
        rt = self.ref.rt
        engine = rt.engine
        who = engine.identify(ip, None, rt.clock(), conn=client.id)
        if not should_intercept(engine.settings, who, host.lower().rstrip(".")):
            data.ignore_connection = True
