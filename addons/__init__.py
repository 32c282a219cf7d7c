"""Schoolgate's mitmproxy addons, in pipeline order.

Each addon is a thin adapter from a flow to the core (`proxy.engine`,
`proxy.policy`); they talk to each other only through `flow.metadata`:

    schoolgate.identity    Identity     (identify)
    schoolgate.evaluation  Evaluation   (filter)
    schoolgate.answered    True         a Schoolgate page answered the flow
    schoolgate.failed      "Child.hook" a child raised: the flow was answered 503 (pipeline)

`children(ref)` builds them around one shared `RuntimeRef`; `pipeline(ref)`
puts them behind one `Pipeline` addon, which is what mitmproxy is given:
`schoolgate run` fills the reference before the proxy starts, and
`addons/script.py` (for `mitmdump -s`) fills it from options.
"""
from __future__ import annotations

from addons.alerts import Alerts
from addons.filter import Filter
from addons.identify import Identify
from addons.loginguard import LoginGuard
from addons.pipeline import Pipeline
from addons.portal import Portal
from addons.runtimeref import RuntimeRef
from addons.safesearch import SafeSearch
from addons.tlspolicy import TlsPolicy
from addons.visitlog import VisitLog

__all__ = ["Pipeline", "RuntimeRef", "children", "pipeline"]


def children(ref: RuntimeRef) -> list[object]:
    """The addons in the order they must run."""
    return [LoginGuard(ref), Identify(ref), TlsPolicy(ref), Portal(ref), Filter(ref), SafeSearch(ref), VisitLog(ref),
            Alerts(ref)]


def pipeline(ref: RuntimeRef) -> list[object]:
    """What to add to mitmproxy: one `Pipeline` addon holding `children(ref)`."""
    return [Pipeline(children(ref))]
