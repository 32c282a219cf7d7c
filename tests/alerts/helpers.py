"""Building blocks for the alert tests: the demo school's settings, evaluations, a hand-driven clock."""
from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from alerts.service import AlertService
from alerts.sender import Backoff
from alerts.smtp import SmtpMailer
from config.loader import DEFAULT_CONFIG, load_settings
from config.schema import Settings
from proxy.decision import Action, Decision, Page
from proxy.engine import Evaluation
from proxy.policy import Identity
from proxy.searchterms import SearchTerm

LONDON = ZoneInfo("Europe/London")
MONDAY = dt.datetime(2026, 11, 23, 10, 4, tzinfo=LONDON)   # "Monday 23 November 2026, 10:04"


class Clock:
    def __init__(self, now: dt.datetime = MONDAY) -> None:
        self.now = now.astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


def demo_settings(port: int = 25, security: str = "none", username: str = "", **alerts: Any) -> Settings:
    s = load_settings(DEFAULT_CONFIG)
    return replace(s, smtp=replace(s.smtp, host="127.0.0.1", port=port, security=security, username=username,
                                   timeout_s=5.0),
                   alerts=replace(s.alerts, **alerts))


def evaluation(url: str = "http://pornhub.com/", *, cats: tuple[str, ...] = ("adult",),
               rule: str = "category.blocked", action: Action = Action.BLOCK, severity: str = "immediate",
               user: str | None = "y3.pupil", role: str | None = "pupil", device: str | None = "ks2-laptop-07",
               device_class: str = "school_shared", ip: str = "10.20.2.17", group: str = "ks2",
               search: str | None = None, watch_phrase: str = "", page: Page = Page.CATEGORY) -> Evaluation:
    who = Identity(client_ip=ip, known=True, group=group, user=user, role=role, user_state="active", device=device,
                   device_class=device_class, network="KS2 laptops", source="login" if user else "device")
    decision = Decision(action, group, rule, f"test reason for {rule}", tuple(sorted(cats)),
                        page if action is Action.BLOCK else Page.NONE, bool(severity), severity)
    host = url.split("/")[2] if "://" in url else url
    term = SearchTerm("google", search) if search is not None else None
    return Evaluation(decision, who, host, "name", "/", "", frozenset(cats), term, watch_phrase)


def topic_of(term: str) -> str:
    """A stand-in watch-list matcher: the topic is the first word ("self_harm how to...")."""
    return term.split()[0]


def service(settings: Settings, db: Path, clock: Clock, mailer: Any = None, **kwargs: Any) -> AlertService:
    mailer = mailer or SmtpMailer(settings.smtp)
    return AlertService(settings, db, clock=clock, mailer=mailer, watch_topic=topic_of,
                        backoff=kwargs.pop("backoff", Backoff(base_s=5, cap_s=60)), **kwargs)
