"""UT1 `expressions`: regular expressions matched against `host/path?query`.

They are compiled once, case-insensitively (as squidGuard does).  Running a
handful of regexes on every request is the slowest part of a URL check, so
each pattern is analysed (`categories.exprliterals`) for the literal strings
a match needs, as alternatives of conjunctions ("terms").  Each term has a
key, the literal that looks rarest in URLs; one combined search for all the
keys (a regex factored by common prefixes) rules out nearly every URL before
any pattern runs, and only a pattern one of whose terms is all present runs.
A pattern whose match is one of its plain-text alternatives
(`(/banner/|/sponsor/)`) does not even run: finding the text is the match.
A pattern with no known literal runs on every URL (the others still use
the shortcut).

The keys are chosen to hold one "anchor" character (`/` for the UT1 lists), and
the prefilter is one `findall` that stops only at that character: a C-level
scan for one character, then a factored match of the key tails there (see
`categories.exprliterals.anchored_finder`).  What it returns names the keys
present, so only their terms are checked; a term without the anchor
character keeps a key of its own, looked for with `in`.
"""
from __future__ import annotations

import logging
import re
from re import _parser as sre_parse  # type: ignore[attr-defined]
from collections.abc import Callable

from categories.exprliterals import (  # re-exported: tests and callers import them from here
    FLAGS,
    MAX_TERMS,
    MIN_LITERAL,
    NOTHING,
    anchored_finder,
    choose_anchor,
    first_characters,
    key_of,
    literal_alternatives,
    required_literals,
    requirements,
    strip_leading_any,
    unfactor,
)

logger = logging.getLogger(__name__)

NONE: frozenset[str] = frozenset()
Route = tuple[tuple[str, ...], int, bool]  # a term's other literals, expression index, literal match
Plan = tuple[tuple[Route, ...], tuple[tuple[str, tuple[Route, ...]], ...]]  # see ExpressionSet._plan
MAX_PLANS = 4096
MAX_PLAN_KEY = 8


def _nothing_found(_target: str) -> list[str]:
    return []


class ExpressionSet:
    """Category expressions, ready to test URLs (`target` = host/path?query)."""

    def __init__(self, entries: list[tuple[str, str]]) -> None:
        self.entries: list[tuple[str, re.Pattern[str]]] = []
        self._always: list[tuple[str, re.Pattern[str]]] = []
        self._first: list[frozenset[str] | None] = []  # per entry: what a match starts with, if known
        terms: list[tuple[frozenset[str], int, bool]] = []  # (term, expression, its match is the term)
        for category, pattern in entries:
            try:
                compiled = re.compile(strip_leading_any(pattern), FLAGS)
                parsed = sre_parse.parse(compiled.pattern, FLAGS)
                needs = requirements(parsed)
            except (re.error, RecursionError) as exc:
                logger.warning("skipping expression %r (%s): %s", pattern, category, exc)
                continue
            index = len(self.entries)
            self.entries.append((category, compiled))
            self._first.append(first_characters(parsed))
            if needs == NOTHING:
                self._always.append((category, compiled))
                continue
            plain = literal_alternatives(parsed)
            terms += [(term, index, len(term) == 1 and next(iter(term)) in plain) for term in needs]
        self._find: Callable[[str], list[str]] = _nothing_found
        self._at: dict[str, tuple[tuple[Route, ...], tuple[str, ...]]] = {}  # a found tail -> see _index
        self._routes: dict[str, tuple[Route, ...]] = {}  # key -> the terms it is the key of
        self._loose: tuple[str, ...] = ()  # keys without the anchor character
        self._plans: dict[tuple[str, ...], Plan] = {}  # what the prefilter found -> see _plan
        if terms:
            self._index(terms)
        self._any = bool(self.entries)

    def _index(self, terms: list[tuple[frozenset[str], int, bool]]) -> None:
        """Choose the keys and build the prefilter."""
        anchor = choose_anchor([term for term, _i, _e in terms])
        routes: dict[str, list[Route]] = {}
        for term, index, exact in terms:
            key = key_of(term, anchor)
            routes.setdefault(key, []).append((tuple(sorted(term - {key})), index, exact))
        self._routes = {key: tuple(r) for key, r in routes.items()}
        placed = sorted(key for key in routes if anchor in key)
        self._loose = tuple(sorted(key for key in routes if anchor not in key))
        if not placed:
            self._find = _nothing_found
            return
        self._find = re.compile(anchored_finder(placed, anchor)).findall
        # A found tail: the keys placed there whose tail it starts with.  Those with nothing
        # before the anchor are there (their terms: certain); the others are looked for.
        tails = {key: key[key.index(anchor) + 1:] for key in placed}
        for found in set(tails.values()):
            inside = [key for key in placed if found.startswith(tails[key])]
            certain = tuple(route for key in inside if key.startswith(anchor) for route in self._routes[key])
            self._at[found] = (certain, tuple(key for key in inside if not key.startswith(anchor)))

    def __bool__(self) -> bool:
        return self._any

    def gate(self) -> Callable[[str], list[str]] | None:
        """The prefilter, when it alone says whether an expression can match a target.

        With it, `categories(target)` is: nothing if `gate(target.lower())` is empty, else
        `routed(target, target.lower(), found)`.  None when some pattern runs on every target
        or some key is looked for with `in` (then call `categories`).
        """
        if self._always or self._loose or self._find is _nothing_found:
            return None
        return self._find

    def categories(self, target: str) -> frozenset[str] | set[str]:
        """Categories of the expressions that match the target."""
        lowered = target.lower()
        found = self._find(lowered)
        if not self._always:
            if not found and not self._loose:
                return NONE  # nearly every URL: one C-level scan, nothing allocated
            return self.routed(target, lowered, found)
        out = {category for category, pattern in self._always if pattern.search(target)}
        return self.routed(target, lowered, found, out)

    def routed(self, target: str, lowered: str, found: list[str], out: set[str] | None = None) -> set[str]:
        """Run the expressions one of whose terms is all in the (lower-cased) target.

        `found`: what the prefilter (`gate`) gave for `lowered`.
        """
        if out is None:
            out = set()
        tails = tuple(found)
        plan = self._plans.get(tails)
        if plan is None:
            plan = self._plan(tails)
        candidates, maybe = plan
        for key, routes in maybe:
            if key in lowered:
                candidates += routes
        entries = self.entries
        ascii_only: bool | None = None  # if so, `lowered` matches as IGNORECASE does
        first = self._first
        done = 0  # bit i: expression i ran (or matched) already
        for others, index, exact in candidates:
            if done >> index & 1:
                continue
            for literal in others:
                if literal not in lowered:
                    break
            else:
                done |= 1 << index
                category, pattern = entries[index]
                if category in out:
                    continue
                if exact:
                    if ascii_only is None:
                        ascii_only = target.isascii()
                    if ascii_only:
                        out.add(category)
                        continue
                starts = first[index]
                if (starts is None or target[:1] in starts) and pattern.search(target):
                    out.add(category)
        return out

    def _plan(self, found: tuple[str, ...]) -> Plan:
        """What `routed` checks for one result of the prefilter: the routes the found tails
        make certain, and the keys still to look for (each once) with their routes."""
        certain: list[Route] = []
        keys: list[str] = []
        for tail in found:
            sure, maybe = self._at[tail]
            certain += [route for route in sure if route not in certain]
            keys += [key for key in maybe if key not in keys]
        keys += [key for key in self._loose if key not in keys]
        plan = (tuple(certain), tuple((key, self._routes[key]) for key in keys))
        if len(found) <= MAX_PLAN_KEY:  # a URL crafted with many keys is planned each time
            if len(self._plans) >= MAX_PLANS:  # a bound, in case crafted URLs make many combinations
                self._plans.clear()
            self._plans[found] = plan
        return plan

    def matching(self, target: str) -> list[tuple[str, str]]:
        """(category, pattern) of every expression that matches (slow path, for explain)."""
        return [(c, p.pattern) for c, p in self.entries if p.search(target)]


def validate(pattern: str) -> str | None:
    """None if the pattern compiles, else the error message."""
    try:
        re.compile(pattern, FLAGS)
    except (re.error, RecursionError) as exc:
        return str(exc)
    return None


__all__ = ["FLAGS", "MAX_TERMS", "MIN_LITERAL", "NONE", "NOTHING", "ExpressionSet", "literal_alternatives",
           "required_literals", "requirements", "unfactor", "validate"]
