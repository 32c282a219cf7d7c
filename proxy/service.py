"""`schoolgate run`: mitmproxy in process with Schoolgate's addons, plus the background tasks.

The proxy runs mitmproxy's `DumpMaster` with its default addons (proxy
login among them) and ours after them, in pipeline order; its events go
only to the addons that handle them (`proxy.dispatch`).  The runtime
(engine, visit writer, database) starts before the proxy listens and stops
after it, so every acknowledged visit row is written.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable, Sequence

from mitmproxy import options
from mitmproxy.tools.dump import DumpMaster

from addons import RuntimeRef, pipeline
from proxy.ca import ensure_ca
from proxy import heap
from proxy.context import Context
from proxy.dispatch import dispatch_directly
from proxy.runtime import Runtime

logger = logging.getLogger(__name__)


MODES = ("regular", "transparent")


def mitmproxy_options(ctx: Context, listen_port: int | None = None, mode: str | None = None) -> options.Options:
    """mitmproxy's core options: where to listen and how (`mode`: the config's `[proxy] mode` unless given).

    Transparent mode takes connections the firewall redirected to the proxy's
    port and asks the kernel for each one's original destination (see README).
    """
    s = ctx.settings
    mode = s.proxy.mode if mode is None else mode
    if mode not in MODES:
        raise ValueError(f"proxy mode must be one of {', '.join(MODES)}; got {mode!r}")
    return options.Options(
        mode=[mode],
        listen_host=s.proxy.listen_host,
        listen_port=s.proxy.listen_port if listen_port is None else listen_port,
        confdir=str(ctx.ca_dir),
    )


def addon_options(ctx: Context) -> dict[str, object]:
    """Options that mitmproxy's addons declare (set once they are loaded)."""
    s = ctx.settings
    updates: dict[str, object] = {"connection_strategy": "lazy"}
    if s.proxy.auth == "htpasswd" and s.proxy.htpasswd is not None:
        updates["proxyauth"] = f"@{s.proxy.htpasswd}"
    elif s.proxy.auth == "ldap" and s.proxy.ldap:
        password = os.environ.get(s.proxy.ldap_password_env, "")
        if not password:
            raise RuntimeError(f"proxy login by LDAP needs the bind password in ${s.proxy.ldap_password_env}")
        updates["proxyauth"] = ldap_spec(s.proxy.ldap, password)
    return updates


def ldap_spec(spec: str, password: str) -> str:
    """mitmproxy's proxyauth LDAP spec with the bind password put in its place.

    The config holds `ldap[s]:SERVER[:PORT]:BIND_DN:SUBTREE_DN[?search_filter_key=KEY]` (no secret);
    mitmproxy wants `ldap[s]:SERVER[:PORT]:BIND_DN:PASSWORD:SUBTREE_DN[...]`.
    """
    parts = spec.split(":")
    head = 3 if len(parts) > 2 and parts[2].isdigit() else 2
    if parts[0] not in ("ldap", "ldaps") or len(parts) != head + 2:
        raise ValueError("expected ldap[s]:SERVER[:PORT]:BIND_DN:SUBTREE_DN")
    return ":".join(parts[: head + 1] + [password] + parts[head + 1:])


class Service:
    """The proxy and its runtime; `start()` returns once it listens, `stop()` drains."""

    def __init__(self, ctx: Context, runtime: Runtime | None = None, listen_port: int | None = None,
                 extra_addons: Sequence[object] = (), mode: str | None = None) -> None:
        self.ctx = ctx
        self.mode = ctx.settings.proxy.mode if mode is None else mode
        self.extra_addons = tuple(extra_addons)
        self.runtime = runtime or Runtime(ctx)
        self.listen_port = listen_port
        self.master: DumpMaster | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ensure_ca(self.ctx.ca_dir, self.ctx.settings.school.name)
        await self.runtime.start()
        self.master = DumpMaster(mitmproxy_options(self.ctx, self.listen_port, self.mode), with_termlog=False,
                                 with_dumper=False)
        dispatch_directly(self.master.addons)  # events only to the addons that handle them (proxy.dispatch)
        self.master.addons.add(*pipeline(RuntimeRef(self.runtime)), *self.extra_addons)
        self.master.options.update(**addon_options(self.ctx))
        self._task = asyncio.create_task(self.master.run(), name="mitmproxy")
        for _ in range(500):
            if self.address is not None or self._task.done():
                break
            await asyncio.sleep(0.01)
        if self._task.done():
            await self._task
        if self.address is None:
            raise RuntimeError("the proxy did not start listening")

    @property
    def address(self) -> tuple[str, int] | None:
        if self.master is None:
            return None
        servers = self.master.addons.get("proxyserver").servers
        for server in servers:
            for addr in server.listen_addrs:
                return addr[0], addr[1]
        return None

    async def stop(self) -> None:
        if self.master is not None:
            self.master.shutdown()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, 10)
            except (TimeoutError, asyncio.CancelledError):
                logger.warning("mitmproxy did not stop in time")
        if self.master is not None:   # mitmproxy leaves its listening sockets open at shutdown: close them
            try:
                await self.master.addons.get("proxyserver").servers.update([])
            except Exception as exc:  # noqa: BLE001 - stopping goes on
                logger.warning("could not close the proxy's listening sockets: %s", exc)
        await self.runtime.stop()

    async def wait(self) -> None:
        if self._task is not None:
            await self._task


async def run_forever(ctx: Context, announce: Callable[[Service], None], listen_port: int | None = None,
                      mode: str | None = None) -> int:
    service = Service(ctx, listen_port=listen_port, mode=mode)
    await service.start()
    dns_server = None
    if ctx.settings.dns.enabled:   # the resolver shares the proxy's runtime (engine, query log)
        from proxy.cmd_dns import start_dns

        try:
            dns_server = await start_dns(service.runtime)
        except BaseException:
            await service.stop()
            raise
        service.runtime.dns_counts = dns_server.resolver.counts   # for the metrics endpoint
    heap.freeze_startup_objects()   # no full garbage collection walks them again (proxy.heap)
    announce(service)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(stop.wait())
    proxy_task = service._task
    assert proxy_task is not None
    await asyncio.wait({waiter, proxy_task}, return_when=asyncio.FIRST_COMPLETED)
    logger.info("stopping")
    if dns_server is not None:
        await dns_server.stop()
    await service.stop()
    waiter.cancel()
    return 0
