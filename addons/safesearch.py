"""SafeSearch: force safe results on search engines and YouTube for intercepted requests.

Google, Bing, DuckDuckGo, Yahoo and Ecosia get their safe-search parameters;
YouTube gets the `YouTube-Restrict` header (strict or moderate per group).
The rules live in `proxy.safesearch`; this only applies them to the flow.
"""
from __future__ import annotations

import logging

from mitmproxy import http

from addons.runtimeref import RuntimeRef, evaluation_of
from proxy.safesearch import is_search_engine_host, safesearch_rewrite

logger = logging.getLogger(__name__)


class SafeSearch:
    def __init__(self, ref: RuntimeRef) -> None:
        self.ref = ref

    def request(self, flow: http.HTTPFlow) -> None:
        ev = evaluation_of(flow)
        if flow.response is not None or ev is None:
            return
        group = self.ref.rt.settings.groups.get(ev.decision.group)
        if group is None or not group.safesearch:
            return
        if is_search_engine_host(ev.host) is None:   # most requests: skip parsing the query
            return
        req = flow.request
        rewrite = safesearch_rewrite(req.scheme, ev.host, req.path.split("?", 1)[0], list(req.query.items(multi=True)),
                                     req.headers, group.youtube)
        if rewrite is None:
            return
        for name, value in rewrite.query_set.items():
            req.query[name] = value
        for name, value in rewrite.headers_set.items():
            req.headers[name] = value
        flow.metadata["schoolgate.safesearch"] = rewrite.engine
