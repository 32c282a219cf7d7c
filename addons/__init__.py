"""Schoolgate's mitmproxy addons, in pipeline order.

Each addon is a thin adapter from a flow to the core (`proxy.engine`,
`proxy.policy`); they talk to each other only through `flow.metadata`:

    schoolgate.identity    Identity     (identify)
    schoolgate.evaluation  Evaluation   (filter)
    schoolgate.answered    True         a Schoolgate page answered the flow

`pipeline(ref)` builds them around one shared `RuntimeRef`; `schoolgate run`
fills the reference before the proxy starts, and `addons/script.py` (for
`mitmdump -s`) fills it from options.
"""
from __future__ import annotations

from addons.alerts import Alerts
from addons.filter import Filter
from addons.identify import Identify
from addons.loginguard import LoginGuard
from addons.portal import Portal
from addons.runtimeref import RuntimeRef
from addons.safesearch import SafeSearch
from addons.tlspolicy import TlsPolicy
from addons.visitlog import VisitLog

__all__ = ["RuntimeRef", "pipeline"]


def pipeline(ref: RuntimeRef) -> list[object]:
    """The addons in the order they must run."""
    return [LoginGuard(ref), Identify(ref), TlsPolicy(ref), Portal(ref), Filter(ref), SafeSearch(ref), VisitLog(ref),
            Alerts(ref)]
