"""addons/alerts.py: hands decided flows to the alert service once, and tells attempts from parts of pages."""
from __future__ import annotations

import datetime as dt
from typing import Any

from mitmproxy.test import tflow

from addons.alerts import Alerts
from addons.runtimeref import EVALUATION
from proxy.decision import Action
from tests.alerts.helpers import MONDAY, evaluation


class FakeService:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []

    def submit(self, ev: Any, url: str, *, at: dt.datetime, attempt: bool) -> None:
        self.calls.append((url, attempt))


class FakeRuntime:
    def __init__(self) -> None:
        self.alerts = FakeService()

    def clock(self) -> dt.datetime:
        return MONDAY


class Ref:
    def __init__(self) -> None:
        self.runtime = FakeRuntime()

    @property
    def rt(self) -> FakeRuntime:
        return self.runtime


def _flow(ev: Any, dest: str | None = None) -> Any:
    f = tflow.tflow()
    f.request.url = "http://pornhub.com/img.png"
    if dest is not None:
        f.request.headers["Sec-Fetch-Dest"] = dest
    f.metadata[EVALUATION] = ev
    return f


def test_flagged_flow_is_submitted_once_with_its_url() -> None:
    ref = Ref()
    addon = Alerts(ref)  # type: ignore[arg-type]
    f = _flow(evaluation())
    addon.request(f)
    addon.request(f)
    assert ref.runtime.alerts.calls == [("http://pornhub.com/img.png", True)]


def test_parts_of_pages_are_not_attempts_and_allowed_flows_are_skipped() -> None:
    ref = Ref()
    addon = Alerts(ref)  # type: ignore[arg-type]
    addon.request(_flow(evaluation(), dest="image"))
    addon.request(_flow(evaluation(), dest="document"))
    addon.request(_flow(evaluation(action=Action.ALLOW, severity="", cats=("child",), rule="allow")))
    addon.request(_flow(None))
    assert ref.runtime.alerts.calls == [("http://pornhub.com/img.png", False), ("http://pornhub.com/img.png", True)]
