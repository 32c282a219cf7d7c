"""The engine glue: normalise, look up, detect, decide; and failing closed when it cannot."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from config.loader import DEFAULT_CONFIG, load_settings
from proxy.engine import Engine
from proxy.policy import Identity

LESSON = dt.datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Europe/London"))


class BrokenIndex:
    """Stands in for a category index whose file went bad under the running proxy."""

    @property
    def current(self) -> object:
        raise OSError("index file unreadable")


def who(group: str) -> Identity:
    return Identity(client_ip="10.20.2.5", known=True, group=group)


def test_no_decision_possible_fails_closed_for_pupils_and_open_where_configured(caplog: pytest.LogCaptureFixture) -> None:
    engine = Engine(load_settings(DEFAULT_CONFIG))
    engine.index = BrokenIndex()  # type: ignore[assignment]
    ev = engine.evaluate(who("ks2"), "http://example.org/", at=LESSON)
    assert ev.decision.blocked and ev.decision.rule == "error.fail_closed"
    staff = engine.evaluate(who("staff"), "http://example.org/", at=LESSON)
    assert not staff.decision.blocked and staff.decision.rule == "error.fail_open"
    assert engine.failures == 2
    assert "could not decide http://example.org/" in caplog.text


def test_engine_without_an_index_still_applies_shape_rules(tmp_path: Path) -> None:
    engine = Engine(load_settings(DEFAULT_CONFIG))
    ev = engine.evaluate(who("ks2"), "http://3232235777/", at=LESSON)        # 192.168.1.1 in decimal
    assert ev.host == "192.168.1.1" and ev.decision.rule == "bare_ip"
    ev = engine.evaluate(who("ks2"), "https://www.google.co.uk/search?q=how+to+kill+myself", at=LESSON)
    assert ev.search is not None and ev.search.term == "how to kill myself"
    assert ev.decision.flagged and ev.decision.severity == "immediate"
    ev = engine.evaluate(who("ks2"), "http://good.com@evil.example/", at=LESSON)
    assert ev.host == "evil.example"
