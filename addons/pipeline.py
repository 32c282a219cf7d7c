"""Pipeline: Schoolgate's addons as ONE mitmproxy addon that calls its children itself.

mitmproxy dispatches every event to every addon in its chain, whether the
addon has that hook or not, at a cost of ~15 us per addon per event (a
`safecall` context manager, an `invoke_addon` coroutine and a `traverse`
generator each time).  With the children behind one parent that cost is paid
once: the parent precomputes, per hook, the bound methods of the children that
implement it (in pipeline order) and calls just those.

The parent has no `addons` attribute, on purpose: mitmproxy would then also
call the children itself.  So it forwards `load` and `configure` too, and
refuses at construction a child with a hook it does not forward, rather than
leave that hook silently uncalled.

Failing closed.  mitmproxy's own answer to an addon that raises is to log it
and go on, which would let a request through unfiltered.  Here an exception
in a request-phase hook (`client_connected`, `http_connect`,
`requestheaders`, `request`) is logged with the child's name and:
- `client_connected`: the client is refused;
- a flow that has no response yet is answered 503 ("the filter could not
  check this request") and marked answered, so it never goes upstream.
The later children still run (they skip answered flows, and the logging
children, VisitLog and Alerts, record it), and on `response`/`error` every
child runs whatever an earlier one did.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

from mitmproxy import connection, exceptions, hooks, http, tls

from addons.runtimeref import ANSWERED

logger = logging.getLogger(__name__)

FAILED = "schoolgate.failed"     # flow.metadata: "Child.hook" that raised, when the flow was answered 503
FAILED_TEXT = "Sorry, the filter could not check this request, so it was not sent. Please try again in a minute.\n"
REFUSED_TEXT = "Schoolgate: the filter could not check this connection"

LIFECYCLE = ("load", "configure", "running", "done")
CONNECTION = ("client_connected", "client_disconnected", "tls_clienthello")
FLOW = ("http_connect", "requestheaders", "request", "response", "error")
DISPATCHED = LIFECYCLE + CONNECTION + FLOW
SYNC_ONLY = frozenset({"load", "configure", "done"})   # mitmproxy may call these outside the event loop

Step = tuple[str, Callable[..., Any]]   # ("Child.hook", bound method)


def _is_hook(value: object) -> bool:
    return callable(value) and not inspect.ismodule(value)


class Pipeline:
    """The children, in order, behind one addon (mitmproxy's name for it: `schoolgate`)."""

    name = "schoolgate"

    def __init__(self, children: Sequence[object]) -> None:
        self.children = tuple(children)
        unknown = sorted(f"{type(c).__name__}.{h}" for c in self.children for h in hooks.all_hooks
                         if h not in DISPATCHED and _is_hook(getattr(c, h, None)))
        if unknown:
            raise TypeError(f"Pipeline does not forward these hooks: {', '.join(unknown)}")
        if any(hasattr(c, "addons") for c in self.children):
            raise TypeError("a Pipeline child may not have sub-addons")
        steps: dict[str, tuple[Step, ...]] = {}
        for hook in DISPATCHED:
            found = [(f"{type(c).__name__}.{hook}", getattr(c, hook)) for c in self.children
                     if _is_hook(getattr(c, hook, None))]
            bad = [label for label, func in found if hook in SYNC_ONLY and inspect.iscoroutinefunction(func)]
            if bad:
                raise TypeError(f"{', '.join(bad)} must not be async")
            steps[hook] = tuple(found)
        self.steps = steps
        self._client_connected = steps["client_connected"]
        self._client_disconnected = steps["client_disconnected"]
        self._tls_clienthello = steps["tls_clienthello"]
        self._http_connect = steps["http_connect"]
        self._requestheaders = steps["requestheaders"]
        self._request = steps["request"]
        self._response = steps["response"]
        self._error = steps["error"]

    # lifecycle: no catching (an OptionsError from `configure` must reach mitmproxy)
    def load(self, loader: Any) -> None:
        for _, func in self.steps["load"]:
            func(loader)

    def configure(self, updated: set[str]) -> None:
        for _, func in self.steps["configure"]:
            func(updated)

    async def running(self) -> None:
        for _, func in self.steps["running"]:
            res = func()
            if res is not None and inspect.isawaitable(res):
                await res

    def done(self) -> None:
        for _, func in self.steps["done"]:
            func()

    # request phase: fail closed
    async def client_connected(self, client: connection.Client) -> None:
        for label, func in self._client_connected:
            try:
                res = func(client)
                if res is not None and inspect.isawaitable(res):
                    await res
            except exceptions.AddonHalt:
                raise
            except Exception:
                logger.exception("%s raised; refusing the client %s", label, _peer(client))
                client.error = REFUSED_TEXT

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        await self._fail_closed(self._http_connect, flow)

    async def requestheaders(self, flow: http.HTTPFlow) -> None:
        await self._fail_closed(self._requestheaders, flow)

    async def request(self, flow: http.HTTPFlow) -> None:
        await self._fail_closed(self._request, flow)

    async def _fail_closed(self, steps: tuple[Step, ...], flow: http.HTTPFlow) -> None:
        for label, func in steps:
            try:
                res = func(flow)
                if res is not None and inspect.isawaitable(res):
                    await res
            except exceptions.AddonHalt:
                raise
            except Exception:
                logger.exception("%s raised on %s %s from %s", label, flow.request.method,
                                 flow.request.pretty_url[:200], _peer(flow.client_conn))
                if flow.response is None:
                    flow.metadata[ANSWERED] = True
                    flow.metadata[FAILED] = label
                    flow.response = http.Response.make(503, FAILED_TEXT, {
                        "Content-Type": "text/plain; charset=utf-8", "Retry-After": "60",
                        "Cache-Control": "no-store"})

    # after the request: every child runs, a failure is logged
    async def client_disconnected(self, client: connection.Client) -> None:
        await self._each(self._client_disconnected, client)

    async def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        await self._each(self._tls_clienthello, data)   # a failure leaves the default: intercept

    async def response(self, flow: http.HTTPFlow) -> None:
        await self._each(self._response, flow)

    async def error(self, flow: http.HTTPFlow) -> None:
        await self._each(self._error, flow)

    @staticmethod
    async def _each(steps: tuple[Step, ...], arg: object) -> None:
        for label, func in steps:
            try:
                res = func(arg)
                if res is not None and inspect.isawaitable(res):
                    await res
            except exceptions.AddonHalt:
                raise
            except Exception:
                logger.exception("%s raised; going on with the next addon", label)


def _peer(client: connection.Client) -> str:
    return client.peername[0] if client.peername else "?"
