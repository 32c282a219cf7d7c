"""Pipeline: the children behind one mitmproxy addon, called in order, failing closed when one raises."""
from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from mitmproxy import connection, exceptions, http
from mitmproxy.test import taddons, tflow

import addons
from addons import Pipeline, RuntimeRef, children, pipeline
from addons.filter import Filter
from addons.loginguard import LoginGuard
from addons.pipeline import FAILED, FAILED_TEXT, REFUSED_TEXT
from addons.runtimeref import ANSWERED
from addons.visitlog import VisitLog
from proxy.db import open_db
from proxy.records import read_visits
from tests.support.school import start_school

KS2 = "127.0.2.5"


class Recorder:
    """A child with a sync and an async hook, writing what it saw into `log`."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self.log.append(f"{self.name}.requestheaders")

    async def request(self, flow: http.HTTPFlow) -> None:
        self.log.append(f"{self.name}.request answered={flow.response is not None}")

    def response(self, flow: http.HTTPFlow) -> None:
        self.log.append(f"{self.name}.response {flow.response.status_code if flow.response else None}")


class Boom:
    """Raises in whichever hooks it is given."""

    def __init__(self, *hooks: str) -> None:
        for hook in hooks:
            setattr(self, hook, self._raise)

    def _raise(self, *_args: object) -> None:
        raise RuntimeError("boom")


def test_the_school_pipeline_is_one_addon_with_the_children_in_order() -> None:
    built = pipeline(RuntimeRef())
    assert len(built) == 1 and isinstance(built[0], Pipeline)
    names = [type(c).__name__ for c in built[0].children]
    assert names == [type(c).__name__ for c in children(RuntimeRef())]
    assert names == ["LoginGuard", "Identify", "TlsPolicy", "Portal", "Filter", "SafeSearch", "VisitLog", "Alerts"]
    assert not hasattr(built[0], "addons")   # mitmproxy must not call the children a second time
    steps = built[0].steps
    assert [label for label, _ in steps["request"]] == ["Portal.request", "Filter.request", "SafeSearch.request",
                                                        "Alerts.request"]
    assert [label for label, _ in steps["response"]] == ["VisitLog.response"]


async def test_hooks_go_only_to_the_children_that_have_them_in_order() -> None:
    log: list[str] = []
    pipe = Pipeline([Recorder("a", log), LoginGuard(RuntimeRef()), Recorder("b", log)])
    flow = tflow.tflow()
    await pipe.requestheaders(flow)
    await pipe.request(flow)
    flow.response = tflow.tresp()
    await pipe.response(flow)
    await pipe.error(flow)                 # nobody has it: nothing happens
    assert log == ["a.requestheaders", "b.requestheaders", "a.request answered=False", "b.request answered=False",
                   "a.response 200", "b.response 200"]


def test_load_and_configure_reach_the_children_through_mitmproxy() -> None:
    guard = LoginGuard(RuntimeRef())
    with taddons.context() as tctx:
        tctx.master.addons.add(Pipeline([guard]))          # its `load` declares the child's options
        pipe = tctx.master.addons.get("schoolgate")
        tctx.configure(pipe, schoolgate_login_failures=3, schoolgate_login_window=2)
        assert guard.max_failures == 3 and guard.window_s == 120.0
        with pytest.raises(exceptions.OptionsError, match="schoolgate_login_failures"):
            tctx.configure(pipe, schoolgate_login_failures=0)   # the child's refusal reaches mitmproxy
    assert guard.max_failures == 3


def test_a_hook_the_pipeline_does_not_forward_is_refused() -> None:
    class Websocket:
        def websocket_message(self, flow: object) -> None: ...

    class AsyncDone:
        async def done(self) -> None: ...

    class Parent:
        addons: list[object] = []

    with pytest.raises(TypeError, match="Websocket.websocket_message"):
        Pipeline([Websocket()])
    with pytest.raises(TypeError, match="AsyncDone.done must not be async"):
        Pipeline([AsyncDone()])
    with pytest.raises(TypeError, match="sub-addons"):
        Pipeline([Parent()])


@pytest.mark.parametrize("hook", ["requestheaders", "request", "http_connect"])
async def test_a_child_raising_before_the_upstream_answers_503_and_the_rest_still_run(
        hook: str, caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    pipe = Pipeline([Boom(hook), Recorder("after", log)])
    flow = tflow.tflow()
    with caplog.at_level(logging.ERROR, logger="addons.pipeline"):
        await getattr(pipe, hook)(flow)
    assert flow.response is not None and flow.response.status_code == 503
    assert flow.response.get_text() == FAILED_TEXT and "the filter could not check this request" in FAILED_TEXT
    assert flow.metadata[ANSWERED] is True and flow.metadata[FAILED] == f"Boom.{hook}"
    assert f"Boom.{hook} raised" in caplog.text and "RuntimeError: boom" in caplog.text
    if hook == "request":
        assert log == ["after.request answered=True"]   # it sees the flow answered, and skips it
    await pipe.response(flow)
    assert log[-1] == "after.response 503"               # the logging children still run


async def test_a_child_raising_on_an_answered_flow_keeps_the_answer() -> None:
    pipe = Pipeline([Boom("request")])
    flow = tflow.tflow(resp=True)
    flow.response.status_code = 403   # type: ignore[union-attr]
    await pipe.request(flow)
    assert flow.response is not None and flow.response.status_code == 403 and FAILED not in flow.metadata


async def test_a_child_raising_on_client_connected_refuses_the_client(caplog: pytest.LogCaptureFixture) -> None:
    pipe = Pipeline([Boom("client_connected")])
    client: connection.Client = tflow.tclient_conn()
    with caplog.at_level(logging.ERROR, logger="addons.pipeline"):
        await pipe.client_connected(client)
    assert client.error == REFUSED_TEXT
    assert "Boom.client_connected raised; refusing the client 127.0.0.1" in caplog.text


async def test_a_child_raising_after_the_request_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    log: list[str] = []
    pipe = Pipeline([Boom("response"), Recorder("after", log)])
    flow = tflow.tflow(resp=True)
    with caplog.at_level(logging.ERROR, logger="addons.pipeline"):
        await pipe.response(flow)
    assert log == ["after.response 200"] and flow.response is not None and flow.response.status_code == 200
    assert "Boom.response raised" in caplog.text


async def test_through_the_real_proxy_a_failing_child_fails_closed_and_the_visit_is_logged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def with_a_failing_child(ref: RuntimeRef) -> list[object]:
        kids = children(ref)   # the original function (imported before the patch)
        at = next(i for i, kid in enumerate(kids) if isinstance(kid, Filter))
        return [*kids[: at + 1], Boom("request"), *kids[at + 1:]]   # after the Filter allowed it

    monkeypatch.setattr(addons, "children", with_a_failing_child)
    school = await start_school(tmp_path)
    try:
        pipe = school.service.master.addons.get("schoolgate")   # type: ignore[union-attr]
        assert any(isinstance(kid, Boom) for kid in pipe.children)
        c = school.client(KS2)
        r = await c.get("http://example.org/hello.html")
        assert r.status_code == 503 and "the filter could not check this request" in r.text
        assert school.origin.seen == []                          # nothing went upstream
        blocked = await c.get("http://www.bet365.com/")          # the Filter answers first: still its page
        assert blocked.status_code == 403
        await school.runtime.writer.flush()
        conn = await open_db(school.ctx.db_path)
        rows = [v.record for v in await read_visits(conn, 0, 2**40)]
        await conn.close()
        assert [(r.host, r.status, r.action) for r in rows] == [("example.org", 503, "allow"),
                                                                ("www.bet365.com", 403, "block")]
    finally:
        await school.close()


async def test_through_the_real_proxy_a_child_raising_on_connect_refuses_the_client(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(addons, "children", lambda ref: [Boom("client_connected"), VisitLog(ref)])
    school = await start_school(tmp_path)
    try:
        with pytest.raises(httpx.TransportError):
            await school.client(KS2).get("http://example.org/hello.html")
        assert school.origin.seen == []
    finally:
        await school.close()
