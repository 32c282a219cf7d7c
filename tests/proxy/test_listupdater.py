"""The periodic category update: due by the state file, run as a process, picked up by the running engine."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from pathlib import Path

import pytest

from categories.updater import state_path
from proxy.cli import main
from proxy.engine import Engine
from proxy.listupdater import ListUpdater, last_attempt
from proxy.policy import Identity
from tests.support.school import write_school


def _backdate(index: Path, hours: float) -> None:
    path = state_path(index)
    state = json.loads(path.read_text())
    at = dt.datetime.fromisoformat(state["_last_update"]["at"]) - dt.timedelta(hours=hours)
    state["_last_update"]["at"] = at.isoformat()
    path.write_text(json.dumps(state))


async def test_due_by_the_state_file_and_picked_up_without_a_restart(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    ctx = write_school(tmp_path)
    assert await asyncio.to_thread(main, ["init", "--config", str(ctx.config_path), "--data", str(ctx.data_dir)]) == 0
    capsys.readouterr()
    now = dt.datetime.now(dt.UTC)
    assert last_attempt(ctx.index_path) is not None
    updater = ListUpdater(ctx, clock=lambda: now)
    assert not updater.due() and not await updater.tick()          # just built by init
    engine = Engine(ctx.settings, ctx.index_path)
    assert engine.index is not None
    engine.index.check_interval = 0
    pupil = Identity(client_ip="127.0.2.5", known=True, group="ks2")
    assert not engine.evaluate(pupil, "http://new-game.example/").decision.blocked

    (tmp_path / "lists" / "games.txt").write_text("miniclip.com\nnew-game.example\n")
    _backdate(ctx.index_path, 25)
    caplog.set_level(logging.INFO)
    assert updater.due() and await updater.tick()
    assert "category lists updated" in caplog.text
    monday = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
    assert engine.evaluate(pupil, "http://new-game.example/", at=monday).decision.rule == "category.school_hours"
    assert not updater.due()

    (tmp_path / "lists" / "games.txt").unlink()                     # a source that is gone: keep the last good
    _backdate(ctx.index_path, 25)
    assert await updater.tick()
    assert "last good lists stay in use" in caplog.text
    assert engine.evaluate(pupil, "http://new-game.example/", at=monday).decision.rule == "category.school_hours"


async def test_a_runner_is_not_called_when_nothing_is_due(tmp_path: Path) -> None:
    ctx = write_school(tmp_path)
    calls: list[list[str]] = []

    async def runner(argv: list[str]) -> tuple[int, str]:
        calls.append(argv)
        return 0, "ok"

    now = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
    updater = ListUpdater(ctx, clock=lambda: now, runner=runner)
    assert updater.due()                                             # never updated
    assert await updater.tick() and calls[0][-4:] == ["--config", str(ctx.config_path), "--data", str(ctx.data_dir)]
