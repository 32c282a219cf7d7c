"""What the resolver remembers of the policy between queries: identities and decisions.

Deciding a name (`Engine.decide_name`: normalise, look up every suffix in the
category index, run `proxy.policy.decide`) costs tens of microseconds, and a
school asks for the same few thousand names all day.  `DecisionMemo` keeps

- the identity of each client address (`Engine.identify`) for a few seconds, and
- each decision per (client profile, name), where the profile is the identity
  without the address and device name (everything `decide` looks at),

for at most `lifetime` seconds (the resolver uses its block TTL, at most 60 s:
clients keep the answers made from these decisions at least that long anyway).
Everything is forgotten at once when the engine's state changes (the runtime's
refresh brings a new register, new overrides or new list tuning, or the
category index is replaced); the memo looks at that state every
`CHECK_EVERY` seconds.  Equal decisions are stored once.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any, Protocol

from proxy.decision import Decision
from proxy.policy import Identity

logger = logging.getLogger(__name__)


class NamePolicy(Protocol):
    """What the resolver needs of `proxy.engine.Engine`."""

    register: Any
    overrides: Any
    local: Any
    index: Any

    def identify(self, client_ip: str, login: str | None = None, at: dt.datetime | None = None) -> Identity: ...

    def decide_name(self, who: Identity, name: str, at: dt.datetime | None = None) -> Decision: ...


class DecisionMemo:
    IDENTITY_SECONDS = 5.0
    CHECK_EVERY = 0.1

    def __init__(self, policy: NamePolicy, lifetime: float = 60.0, max_entries: int = 100_000) -> None:
        self.policy = policy
        self.lifetime = lifetime
        self.max_entries = max_entries
        self._identities: dict[str, tuple[Identity, float, int]] = {}
        self._profiles: dict[Identity, int] = {}
        self._decisions: dict[tuple[int, str], Decision] = {}
        self._distinct: dict[Decision, Decision] = {}
        self._forget_at = 0.0
        self._check_at = 0.0
        self._state: tuple[Any, Any, Any, Any] | None = None
        self.hits = 0
        self.misses = 0

    def identity(self, client_ip: str, at: dt.datetime, mono: float) -> tuple[Identity, int]:
        """The client's identity and profile number."""
        if mono >= self._check_at:
            self._check(mono)
        found = self._identities.get(client_ip)
        if found is not None and found[1] > mono:
            return found[0], found[2]
        who = self.policy.identify(client_ip, at=at)
        profile_of = dataclasses.replace(who, client_ip="", device=None)
        profile = self._profiles.setdefault(profile_of, len(self._profiles))
        if len(self._identities) >= self.max_entries:
            self._identities.clear()
        self._identities[client_ip] = (who, mono + self.IDENTITY_SECONDS, profile)
        return who, profile

    def decide(self, who: Identity, profile: int, name: str, at: dt.datetime) -> Decision:
        """`Engine.decide_name(who, name, at)`, or the same decision remembered."""
        key = (profile, name)
        decision = self._decisions.get(key)
        if decision is not None:
            self.hits += 1
            return decision
        self.misses += 1
        decision = self.policy.decide_name(who, name, at)
        decision = self._distinct.setdefault(decision, decision)
        if len(self._decisions) >= self.max_entries:
            self._decisions.clear()
            self._distinct.clear()
        self._decisions[key] = decision
        return decision

    def _check(self, mono: float) -> None:
        self._check_at = mono + self.CHECK_EVERY
        policy = self.policy
        index = policy.index.current if policy.index is not None else None
        state = (policy.register, policy.overrides, policy.local, index)
        old = self._state
        if old is None or any(a is not b for a, b in zip(state, old, strict=True)):
            if old is not None:
                logger.debug("the engine's state changed: forgetting identities and decisions")
            self._state = state
            self._identities.clear()
            self._profiles.clear()
            self.forget(mono)
        elif mono >= self._forget_at:
            self.forget(mono)

    def forget(self, mono: float) -> None:
        self._decisions.clear()
        self._distinct.clear()
        self._forget_at = mono + self.lifetime
