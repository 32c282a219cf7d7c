"""`proxy.dispatch.DirectAddonManager` must call exactly what mitmproxy's own manager calls, in the same order."""
from __future__ import annotations

import asyncio
import logging
import types
from pathlib import Path
from typing import Any

import pytest
from mitmproxy import exceptions, hooks, options
from mitmproxy.addonmanager import AddonManager
from mitmproxy.proxy.layers.http import HttpRequestHook
from mitmproxy.test import tflow
from mitmproxy.tools.dump import DumpMaster

from proxy.dispatch import DirectAddonManager, dispatch_directly
from tests.support.school import start_school


class Recorder:
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name = name
        self.calls = calls

    def request(self, flow: Any) -> None:
        self.calls.append(f"{self.name}.request")


class AsyncRecorder:
    def __init__(self, name: str, calls: list[str]) -> None:
        self.name = name
        self.calls = calls

    async def request(self, flow: Any) -> None:
        await asyncio.sleep(0)
        self.calls.append(f"{self.name}.request (async)")


class Failing(Recorder):
    def request(self, flow: Any) -> None:
        self.calls.append(f"{self.name}.request")
        raise ValueError("broken addon")


class Halting(Recorder):
    def request(self, flow: Any) -> None:
        self.calls.append(f"{self.name}.request")
        raise exceptions.AddonHalt()


class Parent:
    """An addon with children that change while it runs (as mitmproxy's script loader's do)."""

    def __init__(self, calls: list[str]) -> None:
        self.name = "parent"
        self.addons: list[object] = [Recorder("child1", calls)]


class ModuleNamed:
    name = "modulenamed"
    request = types.ModuleType("request")  # `from x import request` in an addon: not a hook


def make_master(direct: bool) -> DumpMaster:
    master = DumpMaster(options.Options(), with_termlog=False, with_dumper=False)
    if direct:
        dispatch_directly(master.addons)
    return master


async def run_request(master: DumpMaster) -> None:
    await master.addons.handle_lifecycle(HttpRequestHook(tflow.tflow()))


@pytest.mark.parametrize("direct", [False, True], ids=["mitmproxy's manager", "direct"])
async def test_same_calls_in_the_same_order(direct: bool, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[str] = []
    master = make_master(direct)
    parent = Parent(calls)
    master.addons.add(Recorder("a", calls), ModuleNamed(), AsyncRecorder("b", calls), Failing("c", calls),
                      parent, Recorder("d", calls))
    with caplog.at_level(logging.ERROR):
        await run_request(master)
    assert calls == ["a.request", "b.request (async)", "c.request", "child1.request", "d.request"]
    assert "Addon error: broken addon" in caplog.text  # logged, and the next addon still ran

    calls.clear()
    parent.addons.append(Recorder("child2", calls))  # children are looked at on every event
    await run_request(master)
    assert calls == ["a.request", "b.request (async)", "c.request", "child1.request", "child2.request", "d.request"]


@pytest.mark.parametrize("direct", [False, True], ids=["mitmproxy's manager", "direct"])
async def test_halt_stops_the_event(direct: bool) -> None:
    calls: list[str] = []
    master = make_master(direct)
    master.addons.add(Recorder("a", calls), Halting("h", calls), Recorder("z", calls))
    await run_request(master)
    assert calls == ["a.request", "h.request"]


async def test_adding_and_removing_addons_is_seen_at_once() -> None:
    calls: list[str] = []
    master = make_master(True)
    first = Recorder("a", calls)
    master.addons.add(first)
    await run_request(master)
    assert calls == ["a.request"]
    master.addons.add(Recorder("b", calls))
    await run_request(master)
    master.addons.remove(first)
    await run_request(master)
    assert calls == ["a.request", "a.request", "b.request", "b.request"]


async def test_events_nobody_handles_ask_nobody() -> None:
    master = make_master(True)
    manager = master.addons
    assert isinstance(manager, DirectAddonManager) and isinstance(manager, AddonManager)
    await manager.trigger_event(hooks.UpdateHook([]))
    await run_request(master)
    # of mitmproxy's ~35 default addons, only those with a `request` hook are in its plan
    handlers = [type(addon).__name__ for addon, _func in manager._plans["request"]]
    assert 0 < len(handlers) < len(manager.chain) // 2
    # nobody handles `update`: only addons with children (the script loader) are still visited, in case
    assert all(func is None and hasattr(addon, "addons") for addon, func in manager._plans["update"])


async def test_a_hook_that_is_not_callable_is_an_error() -> None:
    master = make_master(True)
    master.addons.add(types.SimpleNamespace(name="odd", request=42))
    with pytest.raises(exceptions.AddonManagerError, match="not callable"):
        await run_request(master)


async def test_the_running_service_dispatches_directly(tmp_path: Path) -> None:
    """`schoolgate run`'s master: the pipeline still sees every request (a block and an allow)."""
    school = await start_school(tmp_path)
    try:
        assert school.service.master is not None
        manager = school.service.master.addons
        assert type(manager) is DirectAddonManager
        client = school.client("127.0.2.5")  # a KS2 laptop
        assert (await client.get("http://www.bet365.com/")).status_code == 403
        assert (await client.get("http://example.org/hello.html")).status_code == 200
        assert "Pipeline" in [type(addon).__name__ for addon, _func in manager._plans["request"]]
    finally:
        await school.close()
