"""UT1 `expressions`: regular expressions matched against `host/path?query`.

They are compiled once, case-insensitively (as squidGuard does).  Running a
handful of regexes on every request is the slowest part of a URL check, so
each pattern is analysed (with the `re` parser) for the literal strings a
match needs, as alternatives of conjunctions: `(google\\..*/search\\?q=cache)|
(bing\\.com/videos/search)` needs "google." and "/search?q=cache", or
"bing.com/videos/search".  Each conjunction has a key, the literal that looks
rarest in URLs; one combined search for all the keys (a regex factored by
common prefixes) rules out nearly every URL before any pattern runs, and
only a pattern one of whose conjunctions is all present runs.  A pattern
whose match is one of its plain-text alternatives (`(/banner/|/sponsor/)`)
does not even run: finding the text is the match.  A pattern with no known
literal runs on every URL (the others still use the shortcut).
"""
from __future__ import annotations

import logging
import re
from re import _constants as sre_c  # type: ignore[attr-defined]
from re import _parser as sre_parse  # type: ignore[attr-defined]
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

MIN_LITERAL = 3
MAX_TERMS = 32      # alternatives kept per pattern; beyond, the less selective part is dropped
FLAGS = re.IGNORECASE
Terms = list[frozenset[str]]  # any one term, every literal of it: what a match needs
NOTHING: Terms = [frozenset()]  # no known requirement
_REPEATS = (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, sre_c.POSSESSIVE_REPEAT)


def _weakest(terms: Terms) -> int:
    """Length of the shortest key (longest literal of a term): how selective the terms are."""
    return min((max(map(len, t)) if t else 0) for t in terms)


def _both(a: Terms, b: Terms) -> Terms:
    """Terms of `a and b`; when the product is too large, the more selective side alone."""
    if a == NOTHING:
        return b
    if b == NOTHING:
        return a
    if len(a) * len(b) > MAX_TERMS:
        return a if (_weakest(a), -len(a)) >= (_weakest(b), -len(b)) else b
    return list(dict.fromkeys(x | y for x in a for y in b))


def _plain_group(item: tuple[Any, Any]) -> bool:
    op, av = item
    return op is sre_c.SUBPATTERN and not av[1] and not av[2]  # a group without inline flags


def _branch_of(item: tuple[Any, Any]) -> list[Any] | None:
    """The alternatives of a BRANCH, or of a group (without inline flags) holding only one."""
    op, av = item
    if _plain_group(item):
        inner = unfactor(av[-1])
        if len(inner) != 1:
            return None
        op, av = inner[0]
    return list(av[1]) if op is sre_c.BRANCH else None


def unfactor(seq: Any) -> list[Any]:
    """Undo the parser's factoring of common prefixes: `/(?:banner/|sponsor/)` -> `/banner/|/sponsor/`.

    Only for analysis (same matches, captures aside): literals stay whole, so
    the prefilter keys are the longest ones.
    """
    out: list[Any] = []
    for item in seq:
        alternatives = _branch_of(item)
        pending: list[Any] = []
        while out and out[-1][0] is sre_c.LITERAL:
            pending.insert(0, out.pop())
        if alternatives is not None and pending:
            out.append((sre_c.BRANCH, (None, [pending + list(alt) for alt in alternatives])))
        else:
            out += pending
            out.append(item)
    return out


def requirements(seq: Any) -> Terms:
    """Literal conjunctions, one of which every match of the parsed sequence contains."""
    seq = unfactor(seq)
    need: Terms = NOTHING
    run: list[str] = []

    def flush() -> None:
        nonlocal need
        if len(run) >= MIN_LITERAL:
            need = _both(need, [frozenset({"".join(run).lower()})])
        run.clear()

    for op, av in seq:
        if op is sre_c.LITERAL:
            run.append(chr(av))
            continue
        flush()
        if op is sre_c.SUBPATTERN:
            need = _both(need, requirements(av[-1]))
        elif op is sre_c.BRANCH:
            alternatives = [requirements(branch) for branch in av[1]]
            if all(alt != NOTHING for alt in alternatives):
                union = list(dict.fromkeys(t for alt in alternatives for t in alt))
                if len(union) <= MAX_TERMS:
                    need = _both(need, union)
        elif op in _REPEATS and av[0] >= 1:
            need = _both(need, requirements(av[2]))
    flush()
    return need


def required_literals(seq: Any) -> set[str] | None:
    """Literals one of which occurs in every match (each conjunction's key); None if unknown."""
    terms = requirements(seq)
    if terms == NOTHING:
        return None
    return {_key(t) for t in terms}


# How rarely a character turns up in URLs, roughly: the key of a term is its literal with the
# highest sum, so that `/search` + `google.` + `q=cache` is looked for as `q=cache`, and the
# prefilter stops fewer ordinary URLs.  (Any literal of a term would be correct.)
_COMMON = frozenset("etaoinsrhl/.")
_RARE = frozenset("jkqvxz?=&%:;~!$'()*+,@")


def _weight(literal: str) -> int:
    return sum(1 if c in _COMMON else 4 if c in _RARE else 2 for c in literal)


def _key(term: frozenset[str]) -> str:
    """The literal of a term that the prefilter looks for: the rarest-looking, then the longest."""
    return max(sorted(term), key=lambda lit: (_weight(lit), len(lit)))


def literal_alternatives(seq: Any) -> set[str]:
    """Alternatives of the whole pattern that are plain text (`(/banner/|/sponsor/)`), lower-cased.

    Finding one of those in a target is a match of the pattern: no need to run it.
    """
    seq = unfactor(seq)
    while len(seq) == 1 and _plain_group(seq[0]):
        seq = unfactor(seq[0][1][-1])
    alternatives = _branch_of(seq[0]) if len(seq) == 1 else None
    out: set[str] = set()
    for alt in alternatives if alternatives is not None else [seq]:
        alt = unfactor(alt)
        if len(alt) >= MIN_LITERAL and all(op is sre_c.LITERAL for op, _av in alt):
            out.add("".join(chr(av) for _op, av in alt).lower())
    return out


def _trie(words: list[str]) -> str:
    """A regex matching any of the words, factored by common prefixes (fewer tries per position)."""
    groups: dict[str, list[str]] = {}
    for word in words:
        if word:
            groups.setdefault(word[0], []).append(word[1:])
    alts = [re.escape(first) + _trie(tails) for first, tails in sorted(groups.items())]
    if not alts:
        return ""
    body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    return f"(?:{body})?" if "" in words else body


def _strip_leading_any(pattern: str) -> str:
    """`.*x` searches like `x` but costs quadratic time; drop the leading `.*`."""
    return pattern[2:] if pattern.startswith(".*") and len(pattern) > 2 else pattern


NONE: frozenset[str] = frozenset()


def _never(_target: str) -> None:
    return None


Route = tuple[tuple[str, ...], int, bool]  # a term's other literals, expression index, literal match


class ExpressionSet:
    """Category expressions, ready to test URLs (`target` = host/path?query)."""

    def __init__(self, entries: list[tuple[str, str]]) -> None:
        self.entries: list[tuple[str, re.Pattern[str]]] = []
        self._always: list[tuple[str, re.Pattern[str]]] = []
        routes: dict[str, list[Route]] = {}  # key literal -> the terms it is the key of
        for category, pattern in entries:
            try:
                compiled = re.compile(_strip_leading_any(pattern), FLAGS)
                parsed = sre_parse.parse(compiled.pattern, FLAGS)
                terms = requirements(parsed)
            except (re.error, RecursionError) as exc:
                logger.warning("skipping expression %r (%s): %s", pattern, category, exc)
                continue
            index = len(self.entries)
            self.entries.append((category, compiled))
            if terms == NOTHING:
                self._always.append((category, compiled))
                continue
            plain = literal_alternatives(parsed)
            for term in terms:
                key = _key(term)
                exact = len(term) == 1 and key in plain
                routes.setdefault(key, []).append((tuple(sorted(term - {key})), index, exact))
        self._prefilter: re.Pattern[str] | None = None
        self._search: Callable[[str], re.Match[str] | None] = _never
        self._route: list[tuple[str, list[Route]]] = []
        if routes:
            ordered = sorted(routes, key=lambda k: (-len(k), k))
            self._prefilter = re.compile(_trie(ordered))
            self._search = self._prefilter.search
            self._route = [(key, routes[key]) for key in ordered]
        self._any = bool(self.entries)

    def __bool__(self) -> bool:
        return self._any

    def categories(self, target: str) -> frozenset[str] | set[str]:
        """Categories of the expressions that match the target."""
        if not self._always:
            lowered = target.lower()
            if self._search(lowered) is None:
                return NONE  # nearly every URL: one C-level search, nothing allocated
            return self._routed(target, lowered, set())
        out = {category for category, pattern in self._always if pattern.search(target)}
        if self._prefilter is None:
            return out
        lowered = target.lower()
        if self._search(lowered) is None:
            return out
        return self._routed(target, lowered, out)

    def _routed(self, target: str, lowered: str, out: set[str]) -> set[str]:
        """Run the expressions one of whose terms is all in the (lower-cased) target."""
        entries = self.entries
        ascii_only = target.isascii()  # then `lowered` matches as IGNORECASE does
        done: set[int] = set()
        for key, terms in self._route:
            if key not in lowered:
                continue
            for others, index, exact in terms:
                if index in done:
                    continue
                for literal in others:
                    if literal not in lowered:
                        break
                else:
                    done.add(index)
                    category, pattern = entries[index]
                    if category not in out and ((exact and ascii_only) or pattern.search(target)):
                        out.add(category)
        return out

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
