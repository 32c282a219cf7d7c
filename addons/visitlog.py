"""VisitLog: one row per request (who, which device, IP, when, what, category, decision, why).

Rows go through the store's batching writer: `submit` never blocks, and a
full queue is counted, never waited on, so logging cannot slow or stop
filtering.  Query strings are kept only for search engines (personal data
kept small).
"""
from __future__ import annotations

import logging

from mitmproxy import http

from addons.runtimeref import RuntimeRef, evaluation_of, header
from proxy.records import VisitRecord
from proxy.searchterms import keep_query

logger = logging.getLogger(__name__)

LOGGED = "schoolgate.logged"


class VisitLog:
    def __init__(self, ref: RuntimeRef) -> None:
        self.ref = ref

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if evaluation_of(flow) is not None:   # decided on the CONNECT: passed through or refused
            self._log(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.request.method != "CONNECT":
            self._log(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        if flow.request.method != "CONNECT":
            self._log(flow)

    def _log(self, flow: http.HTTPFlow) -> None:
        ev = evaluation_of(flow)
        if ev is None:
            return
        metadata = flow.metadata
        if metadata.get(LOGGED):
            return
        metadata[LOGGED] = True
        rt = self.ref.rt
        who = ev.identity
        d = ev.decision
        req = flow.request
        resp = flow.response
        method, scheme = req.method, req.scheme   # each read decodes mitmproxy's bytes: once
        path = ev.path or "/"
        if ev.query and keep_query(ev.host):
            path = f"{path}?{ev.query}"
        connect = method == "CONNECT"
        page_view = False
        if not connect:   # the response's header only when the request's does not say
            dest = header(req.headers, b"sec-fetch-dest")
            page_view = dest == "document" or (not dest and resp is not None
                                               and "html" in header(resp.headers, b"content-type"))
        rt.counters.visit(d.blocked, d.flagged)   # plain integers for the metrics endpoint
        rt.writer.submit(VisitRecord(
            ts=rt.clock().timestamp(), user=who.user, group=d.group, device=who.device,
            client_ip=who.client_ip, method=method, scheme=scheme, host=ev.host,
            path=path, categories=ev.categories and tuple(sorted(ev.categories)) or (), action=d.action.value,
            rule=d.rule, search_term=ev.search.term if ev.search else None,
            bytes=len(resp.raw_content or b"") if resp is not None else 0, page_view=page_view,
            flagged=d.flagged, intercepted=not connect and scheme == "https",
            status=resp.status_code if resp else None))
