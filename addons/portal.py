"""Portal: Schoolgate's own pages on its block-page host name.

Answers requests for `[proxy] block_page_name` (default `schoolgate.local`):
  /review           POST from a block page: "ask for this site to be reviewed"
  /proxy.pac, /wpad.dat   the proxy auto-config file for school devices
  /ca.pem           the school's CA certificate, to install on school devices
  /                 a short page saying the filter is on, with the CA link
The review form carries a CSRF token bound to the block's reference, and
each client may send only a few requests in ten minutes.
"""
from __future__ import annotations

import html
import logging
import time
from collections import defaultdict, deque
from urllib.parse import parse_qs

from mitmproxy import http

from addons.runtimeref import ANSWERED, RuntimeRef, header, identity_of
from proxy.blockpages import render_review_thanks
from proxy.db import retry_locked
from proxy.reviews import add_request

logger = logging.getLogger(__name__)

RATE_LIMIT = 5            # review requests per client ...
RATE_WINDOW_S = 600.0     # ... in this many seconds


class Portal:
    def __init__(self, ref: RuntimeRef) -> None:
        self.ref = ref
        self._recent: dict[str, deque[float]] = defaultdict(deque)

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response is not None:
            return
        rt = self.ref.rt
        name = rt.settings.proxy.block_page_name
        # cheap test first: pretty_host parses the Host header, on every request
        if name not in flow.request.host.lower() and name not in header(flow.request.headers, b"host").lower():
            return
        if flow.request.pretty_host.lower() != name:
            return
        flow.metadata[ANSWERED] = True
        path = flow.request.path.split("?", 1)[0]
        if path in ("/proxy.pac", "/wpad.dat"):
            flow.response = http.Response.make(200, self._pac(), {"Content-Type": "application/x-ns-proxy-autoconfig"})
        elif path == "/ca.pem":
            cert = rt.ctx.ca_cert.read_bytes() if rt.ctx.ca_cert.exists() else b""
            flow.response = http.Response.make(200 if cert else 404, cert, {
                "Content-Type": "application/x-x509-ca-cert",
                "Content-Disposition": 'attachment; filename="schoolgate-ca.pem"'})
        elif path == "/review" and flow.request.method == "POST":
            flow.response = await self._review(flow)
        else:
            body = (f"<!doctype html><meta charset=utf-8><title>Schoolgate</title>"
                    f"<h1>{html.escape(rt.settings.school.name)}: the internet filter is on</h1>"
                    f"<p><a href=/ca.pem>Download the school's certificate</a> (for school devices).")
            flow.response = http.Response.make(200, body, {"Content-Type": "text/html; charset=utf-8"})

    def _pac(self) -> str:
        p = self.ref.rt.settings.proxy
        internal = [n for n in self.ref.rt.settings.school.internal_networks if n.version == 4]
        direct = "".join(f'  if (isInNet(host, "{n.network_address}", "{n.netmask}")) return "DIRECT";\n'
                         for n in internal)
        return (f"function FindProxyForURL(url, host) {{\n{direct}"
                f'  return "PROXY {p.block_page_name}:{p.listen_port}";\n}}\n')

    async def _review(self, flow: http.HTTPFlow) -> http.Response:
        rt = self.ref.rt
        ip = flow.client_conn.peername[0] if flow.client_conn.peername else ""
        if not self._allow(ip):
            return http.Response.make(429, "Too many review requests; please ask your teacher.",
                                      {"Content-Type": "text/plain; charset=utf-8"})
        form = parse_qs(flow.request.get_text(strict=False) or "", max_num_fields=10)
        reference = (form.get("reference") or [""])[0][:40]
        token = (form.get("csrf") or form.get("csrf_token") or [""])[0]
        blocked = rt.recent_blocks.get(reference)
        if not reference or not rt.check_csrf(reference, token) or blocked is None:
            return http.Response.make(403, "This review form has expired; please reload the blocked page.",
                                      {"Content-Type": "text/plain; charset=utf-8"})
        who = identity_of(flow) or blocked.identity
        why = (form.get("reason") or form.get("why") or [""])[0][:2000]
        now = rt.clock()
        await retry_locked(lambda: add_request(
            rt.db, ref=reference, url=blocked.url, host=blocked.host, user=who.user, device=who.device,
            client_ip=who.client_ip, group=blocked.decision.group, categories=blocked.decision.categories,
            reason_text=why, now=now))
        logger.info("review request %s for %s from %s", reference, blocked.host, ip)
        thanks = render_review_thanks(reference, school_name=rt.settings.school.name)
        return http.Response.make(200, thanks, {"Content-Type": "text/html; charset=utf-8"})

    def _allow(self, ip: str) -> bool:
        now = time.monotonic()
        recent = self._recent[ip]
        while recent and now - recent[0] > RATE_WINDOW_S:
            recent.popleft()
        if len(recent) >= RATE_LIMIT:
            return False
        recent.append(now)
        return True
