"""Local tuning of the category lists by technical support (pure: no database).

The lead stores `LocalEntry` rows in SQLite (audited) and builds a
`LocalLists` from them; the policy engine calls `apply(host, categories)`
after the index lookup:

- `deny`  adds its category to the domain and its subdomains;
- `allow` removes its category (every category for `*`) from the domain and
  its subdomains; but `allow` with an allow-type category (`child`,
  `educational_games`, `local_allow`) adds it instead: that is how a teacher
  puts a site in the KS1 walled garden; likewise `deny` with an allow-type
  category takes the site out of it (removes the category);
- nothing ever removes the illegal tier (`iwf`, `ctiru`).

Entries for a parent domain apply first, a more specific domain's entries
after (so `allow *` on `example.com` and `deny games` on `play.example.com`
leave `play.example.com` in `games`).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from categories.hostparse import parse_host
from categories.taxonomy import ILLEGAL_TIER

logger = logging.getLogger(__name__)

ALLOW_TYPE = frozenset({"child", "educational_games", "local_allow"})
ANY = "*"


@dataclass(frozen=True)
class LocalEntry:
    domain: str
    category: str
    kind: str            # "allow" | "deny"
    reason: str
    by: str
    at: datetime


class LocalLists:
    """The local entries, indexed by normalised domain."""

    def __init__(self, entries: Iterable[LocalEntry]) -> None:
        self._by_domain: dict[str, list[LocalEntry]] = {}
        for entry in entries:
            if entry.kind not in ("allow", "deny"):
                raise ValueError(f"local entry kind must be allow or deny, not {entry.kind!r}")
            if entry.kind == "deny" and entry.category == ANY:
                raise ValueError("a deny entry needs a category, not '*'")
            kind, domain, problem = parse_host(entry.domain.strip())
            if kind == "invalid":
                raise ValueError(f"local entry for {entry.domain!r}: {problem}")
            self._by_domain.setdefault(domain, []).append(entry)

    def __len__(self) -> int:
        return sum(map(len, self._by_domain.values()))

    def entries_for(self, host: str) -> list[LocalEntry]:
        """The entries that apply to a host, least specific domain first."""
        found: list[LocalEntry] = []
        if not self._by_domain:
            return found
        labels = host.split(".")
        for i in range(len(labels) - 1, -1, -1):
            found.extend(self._by_domain.get(".".join(labels[i:]), ()))
        return found

    def apply(self, host: str, categories: frozenset[str]) -> frozenset[str]:
        """The categories after local tuning (see the module docstring)."""
        entries = self.entries_for(host)
        if not entries:
            return categories
        result = set(categories)
        for entry in entries:
            allow_type = entry.category in ALLOW_TYPE
            if (entry.kind == "deny") != allow_type:
                result.add(entry.category)
            elif entry.category == ANY:
                result &= ILLEGAL_TIER
            else:
                result.discard(entry.category)
        result |= categories & ILLEGAL_TIER
        return frozenset(result)
