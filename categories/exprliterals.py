"""What an expression needs to match: literal strings, found with the `re` parser.

`requirements(parsed)` gives alternatives of conjunctions: `(google\\..*/search\\?q=cache)|
(bing\\.com/videos/search)` needs "google." and "/search?q=cache", or
"bing.com/videos/search".  `key(term)` is the literal of a conjunction that
looks rarest in URLs (what the prefilter looks for); `literal_alternatives`
the plain-text alternatives of a whole pattern (finding one is a match);
`choose_anchor` and `anchored_finder` the prefilter that finds the keys;
`first_characters` those an anchored pattern can start with.
Used by `categories.expressions`.
"""
from __future__ import annotations

import logging
import re
from re import _constants as sre_c  # type: ignore[attr-defined]
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
    return {key_of(t) for t in terms}


# How rarely a character turns up in URLs, roughly: the key of a term is its literal with the
# highest sum, so that `/search` + `google.` + `q=cache` is looked for as `q=cache`, and the
# prefilter stops fewer ordinary URLs.  (Any literal of a term would be correct.)
_COMMON = frozenset("etaoinsrhl/.")
_RARE = frozenset("jkqvxz?=&%:;~!$'()*+,@")


def _weight(literal: str) -> int:
    return sum(1 if c in _COMMON else 4 if c in _RARE else 2 for c in literal)


def key_of(term: frozenset[str], anchor: str = "") -> str:
    """The literal of a term that the prefilter looks for: one holding the anchor character if
    any does, then the rarest-looking, then the longest."""
    return max(sorted(term), key=lambda lit: (bool(anchor) and anchor in lit, _weight(lit), len(lit)))


def choose_anchor(terms: list[frozenset[str]]) -> str:
    """The character that the most terms have a literal with (the rarest-looking on a tie).

    The prefilter looks for keys only where this character is in the target: a C-level scan
    for one character is several times as fast as a search for any of several first characters.
    """
    counts: dict[str, int] = {}
    for term in terms:
        for c in set("".join(term)):
            counts[c] = counts.get(c, 0) + 1
    return max(sorted(counts), key=lambda c: (counts[c], _weight(c), not c.isalnum())) if counts else ""


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


def anchored_finder(keys: list[str], anchor: str) -> str:
    """A regex whose `findall` gives, at each anchor character of a target, the longest tail of a
    key placed with its first anchor character there (the text after it), or no item at all.

    Only one character is consumed per item, so every anchor character is tried: `/(?=(TAILS))`.
    A key with text before its anchor (`adverts/`) ends with a look-behind for the whole key.
    """
    items = []
    for key in keys:
        at = key.index(anchor)
        items.append((key[at + 1:], key if at else None))
    return f"{re.escape(anchor)}(?=({_tails(items)}))"


def _tails(items: list[tuple[str, str | None]]) -> str:
    """A trie of (tail, whole key to look behind for or None): longer tails are tried first."""
    groups: dict[str, list[tuple[str, str | None]]] = {}
    ends: list[str | None] = []
    for rest, behind in items:
        if rest:
            groups.setdefault(rest[0], []).append((rest[1:], behind))
        else:
            ends.append(behind)
    alts = [re.escape(first) + _tails(sub) for first, sub in sorted(groups.items())]
    if None in ends:
        alts.append("")  # a key ends here and needs nothing before its anchor
    elif ends:
        alts += [f"(?<={re.escape(key)})" for key in sorted(set(e for e in ends if e is not None))]
    if alts == [""]:
        return ""
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


def first_characters(seq: Any) -> frozenset[str] | None:
    """The characters a match can start with, for a pattern anchored at the start whose first
    item is a set of characters without case (`^[0-9]+...`); None for any other pattern.

    A target starting with none of them cannot match: no need to run the pattern.
    """
    if len(seq) < 2 or seq[0] not in ((sre_c.AT, sre_c.AT_BEGINNING), (sre_c.AT, sre_c.AT_BEGINNING_STRING)):
        return None
    op, av = seq[1]
    if op in _REPEATS and av[0] >= 1 and len(av[2]) == 1:
        op, av = av[2][0]
    chars: set[str] = set()
    if op is sre_c.LITERAL:
        chars.add(chr(av))
    elif op is sre_c.IN:
        for kind, value in av:
            if kind is sre_c.LITERAL:
                chars.add(chr(value))
            elif kind is sre_c.RANGE and value[1] - value[0] < 128:
                chars.update(map(chr, range(value[0], value[1] + 1)))
            else:  # a negated set, a category (\\d, \\w): not worth it
                return None
    else:
        return None
    if not all(c.isascii() and c.lower() == c == c.upper() for c in chars):
        return None  # IGNORECASE: a cased character also matches its other cases
    return frozenset(chars)


def strip_leading_any(pattern: str) -> str:
    """`.*x` searches like `x` but costs quadratic time; drop the leading `.*`."""
    return pattern[2:] if pattern.startswith(".*") and len(pattern) > 2 else pattern
