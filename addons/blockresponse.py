"""The HTTP answer for a blocked request: the page for its kind (no addon; shared by Filter and Portal)."""
from __future__ import annotations

import itertools

from mitmproxy import http

from categories.taxonomy import describe
from proxy.blockpages import make_reference, render_block_page
from proxy.engine import Evaluation
from proxy.runtime import BlockedRef, Runtime

_counter = itertools.count(1)


def block_response(rt: Runtime, ev: Evaluation, url: str) -> http.Response:
    now = rt.clock()
    reference = make_reference(now, next(_counter))
    who = ev.identity
    rt.recent_blocks.remember(reference, BlockedRef(url, ev.host, who, ev.decision))
    page = render_block_page(
        ev.decision, url=url, host=ev.host, when=now.astimezone(rt.settings.school.timezone),
        reference=reference, school_name=rt.settings.school.name, describe=describe,
        review_action=f"http://{rt.settings.proxy.block_page_name}/review",
        csrf_token=rt.csrf_token(reference), user=who.user, device=who.device or who.network)
    return http.Response.make(403, page, {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                   f"form-action http://{rt.settings.proxy.block_page_name}",
        "X-Schoolgate-Rule": ev.decision.rule,
        "X-Schoolgate-Reference": reference,
    })
