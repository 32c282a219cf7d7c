"""The expression shortcut (literal terms + prefilter) must give what running every pattern gives."""
from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from categories.expressions import (
    FLAGS,
    ExpressionSet,
    literal_alternatives,
    required_literals,
    requirements,
)
from categories.index import CategoryIndex

PATTERNS = [
    ("publicite", "(/banner/|/sponsor/|/event.ng/|/Advertisement/|adverts/)"),
    ("special", ".*/ymsgr*\\.exe"),
    ("strict", "((google\\..*/search.q=cache)|(images.google.[a-z]+/images.q=tbn))"),
    ("strong", "((google\\..*/search\\?q=cache.*)|(bing\\.com/videos/search\\?q=.*))(anal|sex|xxx)"),
    ("malware", "^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+/search\\?q=[0-9]+$"),
    ("nolit", "[0-9]{6}/x"),              # no literal of 3 characters: runs on every URL
    ("optional", "(abc)?def|ghi(jkl)*"),  # "def" or "ghi"
    ("upper", "/SECRET/(Page|Doc)"),
]
PIECES = ["/banner/", "/BANNER/", "/sponsor", "/event.ng/", "/eventxng/", "adverts/", "/advertisement/",
          "/ymsg.exe", "/ymsgrrr.exe", "/ymsgr.ex", "google.com/search?q=cache", "google.fr/x/search?q=cache",
          "images.google.com/images?q=tbn", "bing.com/videos/search?q=", "sex", "xxx", "anal", "10.0.0.1",
          "/search?q=123", "123456/x", "12345/x", "def", "abcdef", "ghi", "jkl", "/secret/page", "/SeCrEt/doc",
          "/secret/", "İ", "ſ", "K", "/", "?", "a", "www.example.com", "images", "q=tbn"]


def brute(entries: list[tuple[str, str]], target: str) -> set[str]:
    return {c for c, p in entries if re.compile(p.removeprefix(".*"), FLAGS).search(target)}


def targets(pieces: list[str], n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(1, 5))) for _ in range(n)]


def test_requirements_are_alternatives_of_conjunctions() -> None:
    parse = __import__("re")._parser.parse
    assert requirements(parse("(google\\..*/search\\?q=cache)|(bing\\.com/v)", FLAGS)) == [
        frozenset({"google.", "/search?q=cache"}), frozenset({"bing.com/v"})]
    assert required_literals(parse("[0-9]+x", FLAGS)) is None
    assert required_literals(parse("(abc)?def", FLAGS)) == {"def"}
    assert literal_alternatives(parse("(/banner/|/sponsor/|/event.ng/)", FLAGS)) == {"/banner/", "/sponsor/"}
    assert literal_alternatives(parse("(?i:/banner/)", FLAGS)) == set()


def test_shortcut_equals_running_every_pattern() -> None:
    expressions = ExpressionSet(PATTERNS)
    assert len(expressions.entries) == len(PATTERNS)
    checked = matched = 0
    for target in targets(PIECES, 6000, seed=7):
        assert expressions.categories(target) == brute(PATTERNS, target), target
        checked += 1
        matched += bool(brute(PATTERNS, target))
    assert matched > checked // 4  # the generated targets exercise the matching side too


def test_plain_text_alternatives_need_no_regex() -> None:
    expressions = ExpressionSet([("ads", "(/banner/|/sponsor/)")])
    assert expressions.categories("x.org/A/BANNER/b") == {"ads"}
    assert expressions.categories("x.org/bannerless") == set()
    # a non-ASCII target is checked by the pattern itself, as IGNORECASE would
    assert expressions.categories("x.org/İ/banner/") == {"ads"}


@pytest.fixture(scope="module")
def ut1_expressions(real_index: Path) -> list[tuple[str, str]]:
    with CategoryIndex.open(real_index) as index:
        return [(index.categories[c], p) for c, p in index.meta["expressions"]]


def test_real_ut1_expressions_equal_running_every_pattern(ut1_expressions: list[tuple[str, str]]) -> None:
    assert len(ut1_expressions) >= 3
    expressions = ExpressionSet(ut1_expressions)
    literals = sorted({lit for _c, p in ut1_expressions for lit in re.findall(r"[a-z/.?=]{3,}", p)})
    pieces = literals + ["anal", "xxx", "1", "/", "?q=", "www.", "example.com", "Google.COM"]
    for target in targets(pieces, 4000, seed=11):
        assert expressions.categories(target) == brute(ut1_expressions, target), target


def test_plans_are_reused_bounded_and_right_for_many_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """`routed` remembers what to check per prefilter result; a long or crafted target is still right."""
    import categories.expressions as module
    monkeypatch.setattr(module, "MAX_PLANS", 50)
    expressions = ExpressionSet(PATTERNS)
    rng = random.Random(5)
    for target in targets(PIECES, 3000, seed=3) + ["".join(rng.choices(PIECES, k=40)) for _ in range(300)]:
        assert expressions.categories(target) == brute(PATTERNS, target), target
    plans = expressions._plans
    assert 0 < len(plans) <= 50
    assert all(len(found) <= module.MAX_PLAN_KEY for found in plans)
    again = "x.org/banner/"
    expressions.categories(again)
    kept = dict(plans)
    assert expressions.categories(again) == {"publicite"} and plans == kept  # the second time: planned already
