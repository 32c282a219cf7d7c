"""UT1 `expressions`: regular expressions matched against `host/path?query`.

They are compiled once, case-insensitively (as squidGuard does).  Running a
handful of regexes on every request is the slowest part of a URL check, so
each pattern is analysed (with the `re` parser) for literal strings of which
at least one must occur in any match (`(/banner/|/sponsor/)` needs
"/banner/" or "/sponsor/"); one combined search for all those literals
rules out nearly every URL before any pattern runs, and the literals found
say which patterns to run.  A pattern with no such literal disables the
shortcut (every pattern is then tried on every URL).
"""
from __future__ import annotations

import logging
import re
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from typing import Any

logger = logging.getLogger(__name__)

MIN_LITERAL = 3
FLAGS = re.IGNORECASE


def _better(a: set[str] | None, b: set[str] | None) -> set[str] | None:
    """The more selective of two literal sets (longer shortest literal, then fewer)."""
    if a is None:
        return b
    if b is None:
        return a
    return a if (min(map(len, a)), -len(a)) >= (min(map(len, b)), -len(b)) else b


def required_literals(seq: Any) -> set[str] | None:
    """Literals one of which occurs in every match of the parsed sequence; None if unknown."""
    best: set[str] | None = None
    run: list[str] = []

    def flush() -> None:
        nonlocal best
        if len(run) >= MIN_LITERAL:
            best = _better(best, {"".join(run).lower()})
        run.clear()

    for op, av in seq:
        if op is sre_c.LITERAL:
            run.append(chr(av))
            continue
        flush()
        found: set[str] | None = None
        if op is sre_c.SUBPATTERN:
            found = required_literals(av[-1])
        elif op is sre_c.BRANCH:
            branches = [required_literals(branch) for branch in av[1]]
            if all(b is not None for b in branches):
                found = set().union(*branches)  # type: ignore[arg-type]
        elif op in (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT) and av[0] >= 1:
            found = required_literals(av[2])
        best = _better(best, found)
    flush()
    return best


def _strip_leading_any(pattern: str) -> str:
    """`.*x` searches like `x` but costs quadratic time; drop the leading `.*`."""
    return pattern[2:] if pattern.startswith(".*") and len(pattern) > 2 else pattern


class ExpressionSet:
    """Category expressions, ready to test URLs (`target` = host/path?query)."""

    def __init__(self, entries: list[tuple[str, str]]) -> None:
        self.entries: list[tuple[str, re.Pattern[str]]] = []
        owners: dict[str, set[int]] = {}  # literal -> indices of the expressions needing it
        always = False
        for category, pattern in entries:
            try:
                compiled = re.compile(_strip_leading_any(pattern), FLAGS)
                found = required_literals(sre_parse.parse(compiled.pattern, FLAGS))
            except (re.error, RecursionError) as exc:
                logger.warning("skipping expression %r (%s): %s", pattern, category, exc)
                continue
            self.entries.append((category, compiled))
            if found is None:
                always = True
            else:
                for literal in found:
                    owners.setdefault(literal, set()).add(len(self.entries) - 1)
        self._prefilter: re.Pattern[str] | None = None
        # On a prefilter hit (rare) each literal is tested with `in`, and only the
        # expressions owning a literal present in the URL run.
        self._route: list[tuple[str, list[tuple[str, re.Pattern[str]]]]] = []
        if self.entries and not always:
            ordered = sorted(owners, key=len, reverse=True)
            self._prefilter = re.compile("|".join(map(re.escape, ordered)))
            self._route = [(lit, [self.entries[i] for i in sorted(owners[lit])]) for lit in ordered]
        self._always = always

    def __bool__(self) -> bool:
        return bool(self.entries)

    def categories(self, target: str) -> set[str]:
        """Categories of the expressions that match the target."""
        if not self.entries:
            return set()
        if self._always:
            return {category for category, pattern in self.entries if pattern.search(target)}
        assert self._prefilter is not None
        lowered = target.lower()
        if self._prefilter.search(lowered) is None:
            return set()
        candidates = {entry for literal, entries in self._route if literal in lowered
                      for entry in entries}
        return {category for category, pattern in candidates if pattern.search(target)}

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
