"""Portal: Schoolgate's own pages, on its block-page host name and on the proxy's own port.

On `[proxy] block_page_name` (default `schoolgate.local`), through the proxy:
  /review           POST from a block page: "ask for this site to be reviewed"
  /proxy.pac, /wpad.dat   the proxy auto-config file for school devices
  /ca.pem           the school's CA certificate, to install on school devices
  /                 a short page saying the filter is on, with the CA link
The review form carries a CSRF token bound to the block's reference, and
each client may send only a few requests in ten minutes.

Fetched directly from the proxy's port (`http://10.20.0.1:8080/proxy.pac`,
DHCP option 252, or DNS-based WPAD through a port-80 redirect), where the Host
header names whatever the client was given:
  /proxy.pac, /wpad.dat   on any plain-HTTP request, whatever the host.  By the
      time an addon sees a request, mitmproxy has turned a direct (origin-form)
      request into the same flow as a proxied one to its Host header, so the
      two cannot be told apart; the school's own PAC in place of anyone else's
      is what a school wants anyway (a foreign PAC file is a way round the filter).
  /ca.pem           when the request is addressed to this machine: the address or
      the port the client connected to, or `block_page_name`.
These public files are answered at `requestheaders`, before proxy login: an
operating system fetching a PAC file sends no proxy credentials.  Nothing
here ever goes upstream, so the portal is no way round the filter: the only
answers are Schoolgate's own files and pages, and only clients on the
school's networks get this far (`addons.identify` refuses the rest).
"""
from __future__ import annotations

import html
import logging
import time
from collections import defaultdict, deque
from urllib.parse import parse_qs

from mitmproxy import http
from mitmproxy.proxy.mode_specs import TransparentMode

from addons.runtimeref import ANSWERED, RuntimeRef, header, identity_of
from proxy.blockpages import render_review_thanks
from proxy.db import retry_locked
from proxy.pac import CONTENT_TYPE as PAC_TYPE
from proxy.pac import PATHS as PAC_PATHS
from proxy.pac import pac_file, plain_address, proxy_hostport
from proxy.reviews import add_request

logger = logging.getLogger(__name__)

RATE_LIMIT = 5            # review requests per client ...
RATE_WINDOW_S = 600.0     # ... in this many seconds
CA_PATH = "/ca.pem"
LOGIN_ANSWERS = (401, 407)   # proxy login's answer, which a public file replaces


class Portal:
    def __init__(self, ref: RuntimeRef) -> None:
        self.ref = ref
        self._recent: dict[str, deque[float]] = defaultdict(deque)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """The public files (PAC, WPAD, CA), before proxy login asks for credentials."""
        if flow.response is not None and flow.response.status_code not in LOGIN_ANSWERS:
            return
        req = flow.request
        if req.method not in ("GET", "HEAD") or req.scheme != "http":
            return
        path = req.path.split("?", 1)[0]
        if path in PAC_PATHS:
            flow.response = http.Response.make(200, self._pac(flow), {
                "Content-Type": PAC_TYPE, "Cache-Control": "max-age=300"})
        elif path == CA_PATH and self._addressed_to_us(flow):
            flow.response = self._ca()
        else:
            return
        flow.metadata[ANSWERED] = True

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
        if path in PAC_PATHS:   # over intercepted HTTPS (plain HTTP was answered at requestheaders)
            flow.response = http.Response.make(200, self._pac(flow), {"Content-Type": PAC_TYPE})
        elif path == CA_PATH:
            flow.response = self._ca()
        elif path == "/review" and flow.request.method == "POST":
            flow.response = await self._review(flow)
        else:
            body = (f"<!doctype html><meta charset=utf-8><title>Schoolgate</title>"
                    f"<h1>{html.escape(rt.settings.school.name)}: the internet filter is on</h1>"
                    f"<p><a href=/ca.pem>Download the school's certificate</a> (for school devices).")
            flow.response = http.Response.make(200, body, {"Content-Type": "text/html; charset=utf-8"})

    def _addressed_to_us(self, flow: http.HTTPFlow) -> bool:
        """The request names this machine: the address or port its client connected to, or the portal's name."""
        req, local = flow.request, flow.client_conn.sockname
        host = plain_address(req.pretty_host.lower())
        if host == self.ref.rt.settings.proxy.block_page_name:
            return True
        return bool(local) and (req.port == local[1] or host == plain_address(local[0]))

    def _ca(self) -> http.Response:
        ca = self.ref.rt.ctx.ca_cert
        cert = ca.read_bytes() if ca.exists() else b""
        return http.Response.make(200 if cert else 404, cert, {
            "Content-Type": "application/x-x509-ca-cert",
            "Content-Disposition": 'attachment; filename="schoolgate-ca.pem"'})

    def _pac(self, flow: http.HTTPFlow) -> str:
        """The PAC for this client: the proxy's address and port as it reached them."""
        rt = self.ref.rt
        p = rt.settings.proxy
        if isinstance(flow.client_conn.proxy_mode, TransparentMode):
            return pac_file(None, block_page_name=p.block_page_name)
        local = flow.client_conn.sockname
        proxy = proxy_hostport(*local[:2]) if local else proxy_hostport(p.listen_host, p.listen_port)
        client = flow.client_conn
        ip = client.peername[0] if client.peername else ""
        who = rt.engine.identify(ip, None, rt.clock(), conn=client.id)
        internal = () if who.access == "internet_only" else rt.settings.school.internal_networks
        return pac_file(proxy, block_page_name=p.block_page_name, direct_networks=internal)

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
