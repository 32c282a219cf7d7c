"""The values a report is made of: built by `reports.weekly`, read by templates and CSV writers."""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass, field
from typing import Any

from reports.breakdown import Breakdown
from reports.changes import Changes
from reports.events import Event
from reports.health import Health
from reports.period import Period
from reports.visitstats import Attention, Dictionaries

GLANCE_FIELDS = ("visits", "page_views", "users", "devices", "blocked", "flagged", "circumvention",
                 "alerts_sent", "alerts_pending")
GLANCE_LABELS = {
    "visits": "Requests logged", "page_views": "Pages viewed", "users": "People online",
    "devices": "Devices online", "blocked": "Blocked attempts", "flagged": "Flagged events",
    "circumvention": "Attempts to get round the filter", "alerts_sent": "Alert emails sent",
    "alerts_pending": "Alert emails not yet sent",
}


@dataclass(frozen=True)
class Glance:
    """The week at a glance."""

    visits: int = 0
    page_views: int = 0
    users: int = 0
    devices: int = 0
    blocked: int = 0
    flagged: int = 0
    circumvention: int = 0
    alerts_sent: int = 0
    alerts_pending: int = 0

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Glance:
        return cls(**{k: int(data.get(k, 0)) for k in GLANCE_FIELDS})


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    value: int
    previous: int | None

    @property
    def change(self) -> int | None:
        return None if self.previous is None else self.value - self.previous

    @property
    def change_text(self) -> str:
        """'+12 (+4%)', '-3', 'no change', '' when last week is not known."""
        if self.previous is None:
            return ""
        diff = self.value - self.previous
        if diff == 0:
            return "no change"
        sign = "+" if diff > 0 else "−"
        pct = f" ({sign}{abs(diff) * 100 / self.previous:.0f}%)" if self.previous else ""
        return f"{sign}{abs(diff):,}{pct}"


def figures(glance: Glance, previous: Glance | None) -> list[Figure]:
    return [Figure(k, GLANCE_LABELS[k], getattr(glance, k), None if previous is None else getattr(previous, k))
            for k in GLANCE_FIELDS]


@dataclass(frozen=True)
class RepeatedUser:
    user: str
    group: str
    attempts: int               # blocked attempts at flagged sites or to get round the filter
    circumvention: int
    blocked: int                # every blocked attempt
    days: int                   # days with attempts


@dataclass(frozen=True)
class DeviceSeen:
    """A client address with no register device (or a pupil-owned one)."""

    ip: str
    network: str                # the config's network name, or "outside the school's networks"
    device_class: str
    visits: int
    refused: int
    users: int
    first: dt.datetime
    last: dt.datetime


@dataclass(frozen=True)
class NewDevice:
    name: str
    device_class: str
    network: str
    assigned_user: str | None
    added: dt.datetime


@dataclass
class WeeklyReport:
    school: str
    period: Period
    generated: dt.datetime                  # school time
    glance: Glance
    previous: Glance | None
    breakdown: Breakdown
    events: list[Event]                     # flagged and circumvention, time order
    repeated: list[RepeatedUser]
    unknown_devices: list[DeviceSeen]
    pupil_owned: list[DeviceSeen]
    new_devices: list[NewDevice]
    changes: Changes
    health: Health
    attention: Attention | None = None      # the raw aggregates (the governors' summary counts from them)
    dictionaries: Dictionaries | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def figures(self) -> list[Figure]:
        return figures(self.glance, self.previous)

    @property
    def flagged(self) -> list[Event]:
        return [e for e in self.events if e.flagged]

    @property
    def searches(self) -> list[Event]:
        return [e for e in self.events if e.flagged and e.term]

    @property
    def circumvention(self) -> list[Event]:
        return [e for e in self.events if e.circumvention]
