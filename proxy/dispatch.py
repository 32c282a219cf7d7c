"""Event dispatch for the in-process mitmproxy: each event goes only to the addons that handle it.

mitmproxy's `AddonManager.trigger_event` visits every addon in the chain for
every event: for each of the ~35 default addons it enters `safecall()`,
starts an `invoke_addon` coroutine and a `traverse` generator and looks the
hook up with `getattr`, whether the addon has that hook or not.  A request
raises about eight events (four hooks, each followed by `update`), so most
of the proxy's own CPU time per request went to asking addons that do not
answer (`python -m bench.proxyhooks --profile`: `trigger_event`,
`_iter_hooks`, `invoke_addon` and `contextlib` at the top).

`DirectAddonManager` keeps, per event name, the list of the chain's addons
that have a hook for it with their bound hooks, built on first use and
forgotten whenever the chain changes (an addon added or removed).  An addon with
children (`addons`: mitmproxy's script loader) can change them at any time,
so it is traversed on every event as mitmproxy does.  Everything else is as
in `AddonManager.trigger_event`: chain order, one `safecall()` per addon
(an addon's error is logged and the next addon still runs), `AddonHalt`
stops the event, awaitable results are awaited.

`schoolgate run` switches its master's manager with `dispatch_directly`;
addons loaded into a plain `mitmdump -s` run under mitmproxy's own manager.
"""
from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from mitmproxy import exceptions, hooks
from mitmproxy.addonmanager import AddonManager, safecall, traverse

logger = logging.getLogger(__name__)

Plan = list[tuple[Any, Callable[..., Any] | None]]  # addon, its hook (None: traverse it each time)


class DirectAddonManager(AddonManager):
    """`AddonManager` whose `trigger_event` calls only the addons with a hook for the event."""

    _plans: dict[str, Plan]

    def forget_plans(self) -> None:
        self._plans = {}

    def add(self, *addons: Any) -> None:
        super().add(*addons)
        self.forget_plans()

    def remove(self, addon: Any) -> None:
        super().remove(addon)
        self.forget_plans()

    def clear(self) -> None:
        super().clear()
        self.forget_plans()

    def _plan(self, event: hooks.Hook) -> Plan:
        """The chain's addons with a hook for this event (found by mitmproxy's own `_iter_hooks`)."""
        plan: Plan = []
        for addon in self.chain:
            if hasattr(addon, "addons"):
                plan.append((addon, None))
            else:   # no children: `_iter_hooks` gives the addon's own hook, if it has one
                plan += [(addon, func) for _addon, func in self._iter_hooks(addon, event)]
        self._plans[event.name] = plan
        return plan

    async def trigger_event(self, event: hooks.Hook) -> None:
        plan = self._plans.get(event.name)
        if plan is None:
            plan = self._plan(event)
        if not plan:
            return
        args = event.args()
        for addon, func in plan:
            try:
                with safecall():
                    if func is None:
                        await self.invoke_addon(addon, event)
                        continue
                    result = func(*args)
                    if result is not None and inspect.isawaitable(result):
                        await result
            except exceptions.AddonHalt:
                return


def dispatch_directly(manager: AddonManager) -> DirectAddonManager:
    """Make a master's addon manager a `DirectAddonManager`, keeping its chain and its option signal."""
    manager.__class__ = DirectAddonManager
    assert isinstance(manager, DirectAddonManager)
    manager.forget_plans()
    return manager


__all__ = ["DirectAddonManager", "dispatch_directly", "traverse"]
