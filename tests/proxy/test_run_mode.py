"""`schoolgate run` in process: the proxy mode (config `[proxy] mode`, `--mode`) reaches mitmproxy, and the PAC URL
it prints works.

The real `run` command starts the real service on a free port; a spy around
its start-up announcement reads the options the in-process mitmproxy master
got, fetches the printed PAC URL, and then stops the service with SIGTERM the
way an init system would.  Transparent mode only listens here: nothing is
redirected to it, so no privileges are needed.
"""
from __future__ import annotations

import asyncio
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import proxy.service as service_module
from proxy.cli import main
from proxy.pac import CONTENT_TYPE
from proxy.service import Service


def spy_on_run(monkeypatch: pytest.MonkeyPatch, seen: dict[str, Any]) -> None:
    real = service_module.run_forever

    async def run_forever(ctx: Any, announce: Callable[[Service], None], listen_port: int | None = None,
                          mode: str | None = None) -> int:
        def spy(service: Service) -> None:
            announce(service)
            assert service.master is not None
            seen["options.mode"] = list(service.master.options.mode)
            seen["servers"] = [s.mode.type_name for s in service.master.addons.get("proxyserver").servers]
            seen["tasks"] = asyncio.get_running_loop().create_task(fetch_then_stop(service))

        return await real(ctx, spy, listen_port, mode)

    async def fetch_then_stop(service: Service) -> None:
        try:
            host, port = service.address or ("", 0)
            if service.mode == "transparent":   # a direct connection has no original destination: closed
                return
            async with httpx.AsyncClient(timeout=10) as client:
                r = await client.get(f"http://{host}:{port}/proxy.pac", headers={"Host": "wpad.school.test"})
            seen["pac"] = (r.status_code, r.headers.get("content-type"), r.text)
        finally:
            os.kill(os.getpid(), signal.SIGTERM)   # run_forever's handler: a clean stop

    monkeypatch.setattr(service_module, "run_forever", run_forever)
    # the real one would keep this test process's objects out of its garbage collections for good
    monkeypatch.setattr(service_module.heap, "freeze_startup_objects", lambda: seen.setdefault("frozen", 1))


@pytest.mark.parametrize("config_mode,flag,expected", [
    ("regular", [], "regular"),
    ("regular", ["--mode", "transparent"], "transparent"),
    ("transparent", [], "transparent"),
    ("transparent", ["--mode", "regular"], "regular"),
])
def test_run_gives_mitmproxy_the_mode(school_dir: list[str], monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str], config_mode: str, flag: list[str],
                                      expected: str) -> None:
    config = Path(school_dir[1])
    config.write_text(config.read_text().replace('mode = "regular"', f'mode = "{config_mode}"'))
    seen: dict[str, Any] = {}
    spy_on_run(monkeypatch, seen)
    assert main(["run", "--port", "0", *flag, *school_dir]) == 0
    out = capsys.readouterr().out
    assert seen["options.mode"] == [expected] and seen["servers"] == [expected]
    assert seen["frozen"] == 1   # start-up objects kept out of later garbage collections (proxy.heap)
    port = int(re.search(r"proxy: +(?:http://)?127\.0\.0\.1:(\d+)", out).group(1))   # type: ignore[union-attr]
    if expected == "regular":
        status, ctype, pac = seen["pac"]
        assert status == 200 and ctype == CONTENT_TYPE
        assert f"http://127.0.0.1:{port}/proxy.pac" in out       # the URL printed is the one that answered
        assert f'"PROXY 127.0.0.1:{port}"' in pac and "8080" not in out
    else:
        assert "transparent mode" in out and f"TCP 80 and 443 to port {port}" in out
        assert "pac" not in seen and "proxy.pac" not in out
