"""Alerts: every decided request goes to the alert service, which emails the safeguarding leads.

The addon only hands the `Evaluation` the Filter left in `flow.metadata` to
`Runtime.alerts.submit`, which runs the alert rules in memory and returns at
once: writing, grouping and sending happen in the alert service's own task,
never on the request path.  It runs on `request` (so a flagged search is
reported without waiting for the upstream answer) and on `http_connect` for
connections decided on the CONNECT itself (passed-through devices).
A request counts as an *attempt* for the repeated-blocks rule unless the
browser says it is part of a page (`Sec-Fetch-Dest` other than a document).
"""
from __future__ import annotations

import logging

from mitmproxy import http

from addons.runtimeref import RuntimeRef, evaluation_of

logger = logging.getLogger(__name__)

ALERTED = "schoolgate.alerted"
_PAGE_DESTINATIONS = frozenset({"", "document", "iframe", "frame", "embed", "object"})


class Alerts:
    def __init__(self, ref: RuntimeRef) -> None:
        self.ref = ref

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._submit(flow)

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.request.method != "CONNECT":
            self._submit(flow)

    def _submit(self, flow: http.HTTPFlow) -> None:
        ev = evaluation_of(flow)
        if ev is None or flow.metadata.get(ALERTED):
            return
        d = ev.decision
        if not (d.flagged or d.blocked or ev.watch_phrase):
            return
        flow.metadata[ALERTED] = True
        service = getattr(self.ref.runtime, "alerts", None)
        if service is None:
            return
        dest = flow.request.headers.get("sec-fetch-dest", "").lower()
        url = f"{ev.host}:{flow.request.port}" if flow.request.method == "CONNECT" else flow.request.pretty_url
        service.submit(ev, url, at=self.ref.rt.clock(), attempt=dest in _PAGE_DESTINATIONS)
