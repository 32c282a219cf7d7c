"""What the resolver remembers of the policy between queries: identities and decisions.

Deciding a name (`Engine.decide_name`: normalise, look up every suffix in the
category index, run `proxy.policy.decide`) costs tens of microseconds, and a
school asks for the same few thousand names all day.  `DecisionMemo` keeps

- the identity of each client address (`Engine.identify`) for a few seconds, and
- each decision per (client profile, name), where the profile is the identity
  without the address and device name (everything `decide` looks at),

for at most `lifetime` seconds (the resolver uses its block TTL, at most 60 s:
clients keep the answers made from these decisions at least that long anyway),
and at most `max_entries` of each (~170 bytes a decision: 20,000 hold a
school's names for a minute in ~3.5 MB; a flood of random names empties the
memo rather than growing it).
Everything is forgotten at once when the engine's state changes (the runtime's
refresh brings a new register, new overrides or new list tuning, or the
category index is replaced); the memo looks at that state every
`CHECK_EVERY` seconds.

A name not remembered yet (the cold path) is looked up, but its decision is
shared between names: `proxy.policy.decide` reads a DNS name only through
its kind (name / IP / invalid, and why invalid), its categories (the index's,
after local tuning) and the domain overrides that cover it, so names alike in
all of these get the same decision.  The memo works those out itself
(`Engine.categorise_host`: the same lookup `decide_name` makes), asks
`Engine.decide_name` for the first name of each kind and reuses its decision
for the others.  That contract is checked, not just assumed: every
`verify_every`-th reused decision is decided again by `decide_name`, and a
difference (a policy change that reads more of the name) is logged as an
error and turns the sharing off for good (`shared_off`), so every name is
decided by the engine again.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from typing import Any, Protocol

from categories.normalise import normalise_host
from proxy.decision import Decision
from proxy.policy import Identity, Override

logger = logging.getLogger(__name__)


class NamePolicy(Protocol):
    """What the resolver needs of `proxy.engine.Engine`."""

    register: Any
    overrides: Any
    local: Any
    index: Any

    def identify(self, client_ip: str, login: str | None = None, at: dt.datetime | None = None) -> Identity: ...

    def decide_name(self, who: Identity, name: str, at: dt.datetime | None = None) -> Decision: ...

    def categorise_host(self, host: str) -> frozenset[str]: ...


# A lower-case LDH host name of two labels or more: `normalise_host` gives it back unchanged
# (kind "name", no problem); anything else (IPs, IDN, odd characters) goes through it.
_PLAIN_NAME = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?")
_plain_name = _PLAIN_NAME.fullmatch
_EMPTY: frozenset[str] = frozenset()
SharedKey = tuple[int, str, frozenset[str], str, tuple[Override, ...]]


class DecisionMemo:
    IDENTITY_SECONDS = 5.0
    CHECK_EVERY = 0.1

    def __init__(self, policy: NamePolicy, lifetime: float = 60.0, max_entries: int = 20_000,
                 verify_every: int = 100) -> None:
        self.policy = policy
        self.lifetime = lifetime
        self.max_entries = max_entries
        self._identities: dict[str, tuple[Identity, float, int]] = {}
        self._profiles: dict[Identity, int] = {}
        self._decisions: dict[tuple[int, str], Decision] = {}
        self._shared: dict[SharedKey, Decision] = {}
        self.verify_every = verify_every
        self._verify_in = verify_every
        self._forget_at = 0.0
        self._check_at = 0.0
        self._state: tuple[Any, Any, Any, Any] | None = None
        self.hits = 0
        self.misses = 0
        self.shared_hits = 0      # cold names decided by a decision made for another name
        self.verified = 0         # ... of which decided again by the engine, to check
        self.shared_off = False   # a check failed: every cold name goes to the engine

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
        decision = self._cold(who, profile, name, at)
        if len(self._decisions) >= self.max_entries:
            self._decisions.clear()
        self._decisions[key] = decision
        return decision

    def _cold(self, who: Identity, profile: int, name: str, at: dt.datetime) -> Decision:
        """The decision for a name not remembered: shared with names alike (module docstring)."""
        policy = self.policy
        if self.shared_off:
            return policy.decide_name(who, name, at)
        if len(name) <= 253 and _plain_name(name) is not None:
            host, kind, problem = name, "name", ""
        else:
            nh = normalise_host(name)
            host, kind, problem = nh.host, nh.kind, nh.problem or ""
        cats = policy.categorise_host(host) if kind != "invalid" else _EMPTY
        overrides: tuple[Override, ...] = policy.overrides
        covering = tuple(o for o in overrides if o.domain is not None and o.covers_host(host)) if overrides else ()
        shared_key = (profile, kind, cats, problem, covering)
        decision = self._shared.get(shared_key)
        if decision is None:
            decision = policy.decide_name(who, name, at)
            if len(self._shared) >= self.max_entries:
                self._shared.clear()
            self._shared[shared_key] = decision
            return decision
        self.shared_hits += 1
        self._verify_in -= 1
        if self._verify_in <= 0:
            self._verify_in = self.verify_every
            self.verified += 1
            exact = policy.decide_name(who, name, at)
            if exact != decision:
                self.shared_off = True
                self.forget_decisions()
                logger.error("the decision for %s differs from the one shared with names of the same kind, "
                             "categories and overrides (%s, not %s): every name is decided on its own from now "
                             "on", name, exact.rule, decision.rule)
                return exact
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
        self.forget_decisions()
        self._forget_at = mono + self.lifetime

    def forget_decisions(self) -> None:
        self._decisions.clear()
        self._shared.clear()
