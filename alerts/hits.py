"""One flagged hit: what the alert rules saw, in the form the store and the emails use.

A `Hit` is a plain value built from a `proxy.engine.Evaluation` (or, for the
repeated-blocks rule, from a run of them).  The illegal tier's hits never carry
a URL, host or search term: `Hit.redacted()` drops them before anything is
stored or rendered, so no email, log line or table row of the alerts can hold
them.
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace

logger = logging.getLogger(__name__)

KINDS = ("illegal", "category", "watchlist", "circumvention", "bare_ip", "repeated")
SEVERITY_ORDER = {"": 0, "digest": 1, "immediate": 2}


@dataclass(frozen=True, slots=True)
class Hit:
    at: dt.datetime                 # aware, UTC
    kind: str                       # one of KINDS
    severity: str                   # immediate | digest
    category: str                   # the main category (or watch-list topic, circumvention rule...)
    categories: tuple[str, ...] = ()
    user: str | None = None
    role: str | None = None
    device: str | None = None
    device_class: str = ""
    client_ip: str = ""
    group: str = ""
    network: str | None = None
    url: str = ""
    search_term: str = ""
    watch_topic: str = ""
    action: str = ""                # allow | block
    rule: str = ""
    reason: str = ""
    attempts: int = 1               # 'repeated': the blocked attempts this hit stands for

    @property
    def who_key(self) -> str:
        """The person (or, failing that, the device or address) the hit belongs to."""
        if self.user:
            return f"user:{self.user}"
        if self.device:
            return f"device:{self.device}"
        return f"ip:{self.client_ip}"

    @property
    def group_key(self) -> str:
        """Hits with the same key within the grouping window become one email."""
        return f"{self.who_key}|{self.kind}|{self.category}"

    @property
    def illegal(self) -> bool:
        return self.kind == "illegal"

    def redacted(self) -> Hit:
        """The hit as the alerts may keep it: nothing that leads to illegal content."""
        if not self.illegal:
            return self
        return replace(self, url="", search_term="", reason="", categories=tuple(
            c for c in self.categories if c in ("iwf", "ctiru")))


def stronger(a: str, b: str) -> str:
    """The more urgent of two severities ("" < digest < immediate)."""
    return a if SEVERITY_ORDER.get(a, 0) >= SEVERITY_ORDER.get(b, 0) else b
