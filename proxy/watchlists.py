"""Watch lists: search terms the safeguarding leads must hear about (pure).

The lists live in `proxy/watchlists/<topic>.txt`, one term or phrase per line
(`#` starts a comment; a word ending in `*` matches any word it begins, e.g.
`porn*`).  A school adds its own terms through the config (`extra`).
Topics map to alert severities in the config, not here.

Matching works on words, never inside words, so "class" does not match "ass"
and "essex" does not match "sex" (the Scunthorpe problem).  Before comparing,
both the list and the searched text are normalised:

- case, and accents (NFKD, combining marks dropped): "Suïcide" -> "suicide";
  Cyrillic and Greek look-alike letters become the Latin ones;
- apostrophes dropped: "you're" -> "youre";
- letter-for-number swaps inside words that have a letter: 0->o, 1->i or l,
  3->e, 4->a, 5->s, 7->t, @->a, $->s, and ! or | between letters -> i or l;
  numbers alone ("1488", "2024") are kept as they are;
- stretched words: a run of 3+ letters becomes 1 or 2 letters ("suiiiicide",
  "killlll"); a word with a doubled letter also matches a list word of 4+
  letters with the doubles made single ("suiicide"), but a word without
  doubles never matches that way (so "bobs" is not "boobs" and "kil" not "kill");
- spacing and punctuation: single letters in a row are joined ("k y s",
  "s.u.i.c.i.d.e"), a phrase written as one word matches ("killyourself"), and
  a list word of 7+ letters split in two, one part of at most 3 letters,
  matches ("sui cide", but not "hen tai" or "only fans").
"""
from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent / "watchlists"
TOPICS: tuple[str, ...] = ("self_harm", "extremism", "bullying", "adult")

_APOSTROPHES_RE = re.compile(r"['\u2019\u2018`\u02bc]")
_WORD = r"(?:[^\W_]|[@$])"
_TOKEN_RE = re.compile(rf"{_WORD}+(?:[!|]{_WORD}+)*")
_RUN3_RE = re.compile(r"(.)\1{2,}")
_RUN2_RE = re.compile(r"(.)\1+")
# Cyrillic and Greek letters that look like Latin ones ("ѕuicide" with a Cyrillic ѕ).
_CONFUSABLES = str.maketrans(
    "\u0430\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u0455\u0458\u043a\u043c\u0442\u043d\u0432"
    "\u03bf\u03b1\u03b9\u03ba\u03bd\u03c1\u03c4\u03c5\u03c7",
    "aeopcyxisjkmthb"
    "oaiknptux",
)
_LEET = str.maketrans({"0": "o", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"})
_LEET_CHARS = frozenset("01345 7@$!|".replace(" ", ""))
_MIN_DEDOUBLE = 4     # list words shorter than this never match with doubles made single
_MIN_PREFIX = 4       # a `word*` prefix must be at least this long
_MIN_JOINED = 6       # a phrase written as one word matches when this long
_MIN_SPLIT = 7        # a list word split in two matches when this long, one half <= 3 letters


@dataclass(frozen=True, slots=True)
class WatchMatch:
    """A watch-list hit: the topic and the list's phrase that matched."""

    topic: str
    phrase: str


@dataclass(frozen=True, slots=True)
class _Word:
    text: str
    prefix: bool
    dedoubled: str | None   # set when this word may match with doubles made single


@dataclass(frozen=True, slots=True)
class _Phrase:
    topic: str
    phrase: str
    words: tuple[_Word, ...]


@dataclass(frozen=True, slots=True)
class _Token:
    forms: frozenset[str]
    dedoubled: frozenset[str]   # only for tokens that had a doubled letter


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _APOSTROPHES_RE.sub("", stripped.casefold().translate(_CONFUSABLES))


def _unleet(raw: str) -> list[str]:
    """The spellings `raw` may stand for (one, or two when a 1/!/| may be i or l)."""
    if not (_LEET_CHARS.intersection(raw) and any(c.isalpha() for c in raw)):
        return [raw]
    base = raw.translate(_LEET)
    if not any(c in base for c in "1!|"):
        return [base]
    return [base.translate(str.maketrans("1!|", "iii")), base.translate(str.maketrans("1!|", "lll"))]


def _dedouble(word: str) -> str:
    return _RUN2_RE.sub(r"\1", word)


@functools.lru_cache(maxsize=8192)
def _token(raw: str) -> _Token:
    forms: set[str] = set()
    dedoubled: set[str] = set()
    for spelling in _unleet(raw):
        forms.add(spelling)
        if _RUN3_RE.search(spelling):
            forms.add(_RUN3_RE.sub(r"\1", spelling))
            forms.add(_RUN3_RE.sub(r"\1\1", spelling))
        single = _dedouble(spelling)
        if single != spelling:
            dedoubled.add(single)
    return _Token(frozenset(forms), frozenset(dedoubled))


def _raw_tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(_fold(text))


def _join_single_letters(raw: list[str]) -> list[str] | None:
    """`raw` with runs of 2+ one-character words joined, or None when there are none."""
    out: list[str] = []
    run: list[str] = []
    changed = False
    for tok in raw + [""]:
        if len(tok) == 1:
            run.append(tok)
            continue
        if len(run) >= 2:
            out.append("".join(run))
            changed = True
        else:
            out.extend(run)
        run = []
        if tok:
            out.append(tok)
    return out if changed else None


def _list_word(raw: str) -> _Word:
    prefix = raw.endswith("*") and len(raw) > _MIN_PREFIX
    word = raw.rstrip("*")
    spelled = _unleet(word)[0]
    single = _dedouble(spelled)
    return _Word(spelled, prefix, single if len(single) >= _MIN_DEDOUBLE else None)


def _word_matches(tok: _Token, word: _Word) -> bool:
    if word.text in tok.forms:
        return True
    if word.prefix and any(f.startswith(word.text) for f in tok.forms):
        return True
    if word.dedoubled is not None and tok.dedoubled:
        if word.dedoubled in tok.dedoubled:
            return True
        if word.prefix and any(d.startswith(word.dedoubled) for d in tok.dedoubled):
            return True
    return False


class Watchlists:
    """Compiled watch lists; build with `Watchlists.load()`, then call `match`."""

    def __init__(self, terms: Mapping[str, Iterable[str]]) -> None:
        self.topics: tuple[str, ...] = tuple(terms)
        self._first: dict[str, list[_Phrase]] = {}
        self._first_dedoubled: dict[str, list[_Phrase]] = {}
        self._first_prefix: dict[str, list[_Phrase]] = {}   # by the prefix's first letters
        self._long_words: dict[str, _Phrase] = {}
        self._order = {topic: i for i, topic in enumerate(self.topics)}
        self.size = 0
        for topic, phrases in terms.items():
            for phrase in phrases:
                self._add(topic, phrase)

    @classmethod
    def load(cls, extra: Mapping[str, Sequence[str]] | None = None) -> Watchlists:
        """The built-in lists (read once), plus a school's `extra` terms per topic."""
        if not extra:
            return _default_watchlists()
        merged: dict[str, list[str]] = {t: list(p) for t, p in _read_builtin().items()}
        for topic, phrases in extra.items():
            merged.setdefault(topic, []).extend(phrases)
        return cls(merged)

    def _add(self, topic: str, phrase: str) -> None:
        raw = [w for w in re.split(r"[^\w*@$!|]+", _fold(phrase).strip()) if w]
        words = tuple(_list_word(w) for w in raw if w.rstrip("*"))
        if not words:
            return
        entry = _Phrase(topic, phrase.strip(), words)
        self.size += 1
        first = words[0]
        if first.prefix:
            self._first_prefix.setdefault(first.text[:_MIN_PREFIX], []).append(entry)
        else:
            self._first.setdefault(first.text, []).append(entry)
        if first.dedoubled is not None:
            self._first_dedoubled.setdefault(first.dedoubled, []).append(entry)
        joined = "".join(w.text for w in words)
        if len(joined) >= _MIN_JOINED and not any(w.prefix for w in words):
            self._long_words.setdefault(joined, entry)

    def match(self, term: str) -> WatchMatch | None:
        """The most urgent hit in `term` (topics in list order), or None."""
        hits = self.match_all(term)
        return hits[0] if hits else None

    def match_all(self, term: str) -> list[WatchMatch]:
        """Every phrase hit in `term`, most urgent topic first, each phrase once."""
        raw = _raw_tokens(term)
        if not raw:
            return []
        found: dict[tuple[str, str], None] = {}
        streams = [raw]
        joined = _join_single_letters(raw)
        if joined is not None:
            streams.append(joined)
        for stream in streams:
            for entry in self._scan([_token(t) for t in stream], stream):
                found.setdefault((entry.topic, entry.phrase), None)
        hits = [WatchMatch(topic, phrase) for topic, phrase in found]
        hits.sort(key=lambda m: self._order.get(m.topic, len(self._order)))
        return hits

    def _scan(self, tokens: list[_Token], raw: list[str]) -> Iterable[_Phrase]:
        n = len(tokens)
        for i, tok in enumerate(tokens):
            candidates: list[_Phrase] = []
            for form in tok.forms:
                candidates.extend(self._first.get(form, ()))
                long_hit = self._long_words.get(form)
                if long_hit is not None:
                    yield long_hit
            for single in tok.dedoubled:
                candidates.extend(self._first_dedoubled.get(single, ()))
            if self._first_prefix:
                for stem in {f[:_MIN_PREFIX] for f in tok.forms} | {d[:_MIN_PREFIX] for d in tok.dedoubled}:
                    candidates.extend(self._first_prefix.get(stem, ()))
            for entry in candidates:
                words = entry.words
                if i + len(words) > n:
                    continue
                if all(_word_matches(tokens[i + j], w) for j, w in enumerate(words)):
                    yield entry
            if i + 1 < n and min(len(raw[i]), len(raw[i + 1])) <= 3 \
                    and len(raw[i]) + len(raw[i + 1]) >= _MIN_SPLIT:
                pair = _token(raw[i] + raw[i + 1])
                for form in pair.forms:
                    long_hit = self._long_words.get(form)
                    if long_hit is not None and len(long_hit.words) == 1:
                        yield long_hit


def _parse(text: str) -> list[str]:
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


@functools.lru_cache(maxsize=1)
def _read_builtin() -> dict[str, tuple[str, ...]]:
    lists = {}
    for topic in TOPICS:
        path = DATA_DIR / f"{topic}.txt"
        lists[topic] = tuple(_parse(path.read_text(encoding="utf-8")))
        logger.debug("watch list %s: %d terms", topic, len(lists[topic]))
    return lists


@functools.lru_cache(maxsize=1)
def _default_watchlists() -> Watchlists:
    return Watchlists(_read_builtin())
