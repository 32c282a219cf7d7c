"""Keep the category lists fresh: `schoolgate categories update` every `[categories] update_hours`.

The update runs as a separate, lower-priority process (the compile of a full
UT1 download takes tens of seconds and a few hundred MB, which must not stall
the proxy's event loop or stay in its memory).  It swaps the index file
atomically; the running proxy and resolver pick it up by themselves
(`categories.live.LiveIndex`).  A failed download keeps the last good index
(the updater's own rule); this task only logs what happened and tries again
at the next interval.  When the last attempt was, is read from the updater's
state file, so a restart does not trigger an update storm.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from categories.updater import state_path
from proxy.context import Context

logger = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
Runner = Callable[[list[str]], Awaitable[tuple[int, str]]]


async def run_subprocess(argv: list[str]) -> tuple[int, str]:
    """Run `argv` at lower CPU priority; return its exit code and its last lines of output."""
    proc = await asyncio.create_subprocess_exec(
        "nice", "-n", "10", *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await proc.communicate()
    text = out.decode("utf-8", "replace").strip().splitlines()
    return proc.returncode or 0, " | ".join(text[-4:])


def last_attempt(index_path: Path) -> dt.datetime | None:
    """When the updater last ran (successfully or not), from its state file."""
    try:
        state = json.loads(state_path(index_path).read_text())
        return dt.datetime.fromisoformat(state["_last_update"]["at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


class ListUpdater:
    def __init__(self, ctx: Context, clock: Clock, runner: Runner = run_subprocess,
                 check_every_s: float = 600.0) -> None:
        self.ctx = ctx
        self.clock = clock
        self.runner = runner
        self.check_every_s = check_every_s
        self.interval = dt.timedelta(hours=ctx.settings.categories.update_hours)
        self._task: asyncio.Task[None] | None = None
        self.runs = 0

    def due(self) -> bool:
        last = last_attempt(self.ctx.index_path)
        return last is None or self.clock() - last >= self.interval

    async def tick(self) -> bool:
        """Update if due; True when an update ran."""
        if not self.ctx.settings.categories.sources or not self.due():
            return False
        argv = [sys.executable, "-m", "proxy.cli", "categories", "update",
                "--config", str(self.ctx.config_path), "--data", str(self.ctx.data_dir)]
        self.runs += 1
        logger.info("updating the category lists (every %s h)", self.ctx.settings.categories.update_hours)
        code, tail = await self.runner(argv)
        if code == 0:
            logger.info("category lists updated: %s", tail)
        else:
            logger.error("category list update failed; the last good lists stay in use: %s", tail)
        return True

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="schoolgate-list-updater")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.check_every_s)
            try:
                await self.tick()
            except Exception:  # never let the updater take the service down
                logger.exception("the category list updater failed; trying again later")
