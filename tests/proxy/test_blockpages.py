"""Tests of proxy/blockpages.py and its templates (rendered with the real jinja2 templates)."""
from __future__ import annotations

import datetime as dt
import html.parser
import re
from zoneinfo import ZoneInfo

import pytest

from proxy.blockpages import (
    format_when,
    make_reference,
    parse_reference,
    render_block_page,
    render_review_thanks,
)
from proxy.decision import Action, Decision, Page

LONDON = ZoneInfo("Europe/London")
WHEN = dt.datetime(2026, 11, 23, 9, 15, tzinfo=LONDON)
ACTION = "http://schoolgate.local/review"
HOSTILE_URL = 'https://evil.example/"><img src=x onerror=alert(1)><script>alert(2)</script>'
HOSTILE_HOST = "evil.example<script>alert(3)</script>"
HOSTILE_USER = '"><img onerror=alert(4) src=y>'


def describe(category: str) -> str:
    return {"games": "Games", "adult": "Adult content", "iwf": "Child abuse images (IWF list)",
            "social_networks": "Social networks"}.get(category, category)


def decision(page: Page, categories: tuple[str, ...] = ("games",), rule: str = "category.games",
             reason: str = "Games are blocked in school hours") -> Decision:
    return Decision(Action.BLOCK, "ks2", rule, reason, categories, page, flagged=False)


def render(page: Page, *, url: str = "https://www.coolmath-games.example/play?level=3",
           host: str = "www.coolmath-games.example", user: str | None = "y3.pupil",
           device: str | None = "ks2-laptop-14", review_action: str = ACTION,
           d: Decision | None = None) -> str:
    return render_block_page(
        d or decision(page), url=url, host=host, when=WHEN, reference="SG-3F9K-2Q7M",
        school_name="Demo Primary School", describe=describe, review_action=review_action,
        csrf_token="csrf-123", user=user, device=device)


class _Collector(html.parser.HTMLParser):
    """Every tag with its attributes, to look for scripts and outside resources."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(page: str) -> list[tuple[str, dict[str, str | None]]]:
    c = _Collector()
    c.feed(page)
    return c.tags


ALL_PAGES = [p for p in Page if p is not Page.NONE]


@pytest.mark.parametrize("page", ALL_PAGES)
def test_every_page_is_self_contained(page: Page) -> None:
    out = render(page, url=HOSTILE_URL, host=HOSTILE_HOST, user=HOSTILE_USER)
    assert out.startswith("<!DOCTYPE html>")
    assert "For your teacher" in out
    assert "SG-3F9K-2Q7M" in out
    assert "Monday 23 November 2026 at 09:15" in out
    found = tags(out)
    names = {t for t, _ in found}
    assert not names & {"script", "link", "img", "iframe", "object", "embed", "base"}
    for tag, attrs in found:
        for attr in ("src", "href", "srcset", "background"):
            assert attr not in attrs, (tag, attrs)
        assert not any(k.startswith("on") for k in attrs), (tag, attrs)
        if tag == "form":
            assert attrs["action"] == ACTION and attrs["method"] == "post"
        for value in attrs.values():       # no outside address in any attribute
            for address in re.findall(r"https?://[^\s\"'<>;]*", value or ""):
                assert ACTION.startswith(address), (tag, attrs)   # the form and its CSP origin
    assert "@import" not in out and "url(" not in out and "javascript:" not in out


@pytest.mark.parametrize("page", ALL_PAGES)
def test_no_web_address_but_the_review_action_and_the_blocked_url(page: Page) -> None:
    url = "https://blocked.example/page"
    out = render(page, url=url, host="blocked.example").replace(url, "")
    for address in re.findall(r"https?://[^\s\"'<>;]*", out):
        assert ACTION.startswith(address), address


@pytest.mark.parametrize("page", [p for p in ALL_PAGES if p is not Page.ILLEGAL])
def test_hostile_strings_are_escaped(page: Page) -> None:
    out = render(page, url=HOSTILE_URL, host=HOSTILE_HOST, user=HOSTILE_USER,
                 d=decision(page, reason="<b>bold</b> reason"))
    assert "<script>" not in out and "<img" not in out and "<b>bold" not in out
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in out
    assert "evil.example&lt;script&gt;alert(3)&lt;/script&gt;" in out
    assert "&#34;&gt;&lt;img onerror=alert(4) src=y&gt;" in out


def test_javascript_url_is_only_ever_text() -> None:
    out = render(Page.CATEGORY, url="javascript:alert(document.cookie)", host="x")
    assert "javascript:alert" in out        # shown to the teacher as text...
    for _, attrs in tags(out):              # ...never as a link or an action
        assert not any(v and "javascript:" in v for v in attrs.values())


def test_category_page() -> None:
    out = render(Page.CATEGORY)
    assert "This page is blocked" in out and "It is not for children" in out
    assert "ask your teacher" in out.lower()
    assert "www.coolmath-games.example" in out
    assert "https://www.coolmath-games.example/play?level=3" in out
    assert "Games" in out and "Games are blocked in school hours" in out
    assert "ks2" in out and "category.games" in out and "y3.pupil" in out
    assert "ks2-laptop-14" in out
    review = [a for t, a in tags(out) if t == "input"]
    assert {"type": "hidden", "name": "reference", "value": "SG-3F9K-2Q7M"} in review
    assert {"type": "hidden", "name": "csrf_token", "value": "csrf-123"} in review
    assert '<textarea id="why" name="why"' in out and "why do you need it?" in out


def test_category_page_describes_each_category_once() -> None:
    out = render(Page.CATEGORY, d=decision(Page.CATEGORY, ("adult", "social_networks", "adult"),
                                           "category.adult", "Adult content is blocked"))
    assert "Adult content, Social networks" in out


@pytest.mark.parametrize("page,words", [
    (Page.WALLED_GARDEN, ["not on your class's list yet", "Your teacher can add it"]),
    (Page.NOT_AUTHORISED, ["not yet authorised", "parental permission has not been recorded"]),
    (Page.ACCESS_REMOVED, ["has been stopped", "Internet access has been removed"]),
    (Page.DEVICE_NOT_ALLOWED, ["Personal devices may not use the school internet"]),
    (Page.INTERNAL, ["internal network"]),
    (Page.REFUSED, ["does not know this device", "refused"]),
])
def test_page_specific_words(page: Page, words: list[str]) -> None:
    out = render(page)
    for w in words:
        assert w in out, (page, w)


@pytest.mark.parametrize("page,has_form", [
    (Page.CATEGORY, True), (Page.WALLED_GARDEN, True), (Page.NOT_AUTHORISED, False),
    (Page.ACCESS_REMOVED, False), (Page.DEVICE_NOT_ALLOWED, False), (Page.INTERNAL, False),
    (Page.REFUSED, False), (Page.ILLEGAL, False),
])
def test_review_form_only_where_a_review_makes_sense(page: Page, has_form: bool) -> None:
    out = render(page)
    assert ("<form" in out) is has_form
    assert ("form-action http://schoolgate.local" in out) is has_form


def test_illegal_page_never_echoes_the_request() -> None:
    secret_url = "http://secret-host.example/path/abc123?q=searchterm-xyz"
    d = Decision(Action.BLOCK, "ks2", "illegal.iwf", "Listed by the IWF: secret-host.example",
                 ("iwf",), Page.ILLEGAL, flagged=True, severity="immediate",
                 extra={"search": "searchterm-xyz"})
    out = render_block_page(
        d, url=secret_url, host="secret-host.example", when=WHEN, reference="SG-3F9K-2Q7M",
        school_name="Demo Primary School", describe=describe, review_action=ACTION,
        csrf_token="csrf-123", user="y3.pupil", device="ks2-laptop-14")
    for leaked in ("secret-host", "abc123", "searchterm-xyz", "csrf-123", "illegal.iwf",
                   "y3.pupil", "ks2-laptop-14", "IWF list", "<form", "http://", "https://"):
        assert leaked not in out, leaked
    assert ("Access has been denied by your internet access provider because this page may "
            "contain indecent images of children as identified by the Internet Watch "
            "Foundation.") in out
    assert "iwf.org.uk" in out and "blocked in error" in out
    assert "SG-3F9K-2Q7M" in out


def test_unknown_user_and_device() -> None:
    out = render(Page.CATEGORY, user=None, device=None)
    assert "nobody signed in" in out


def test_long_urls_are_shortened() -> None:
    out = render(Page.CATEGORY, url="https://x.example/" + "a" * 5000)
    assert "a" * 400 in out and "a" * 600 not in out


def test_relative_review_action_and_bad_ones() -> None:
    out = render(Page.CATEGORY, review_action="/__schoolgate/review")
    assert "form-action &#39;self&#39;" in out   # 'self', escaped inside the attribute
    assert 'action="/__schoolgate/review"' in out
    for bad in ("javascript:alert(1)", "//evil.example/x", "data:text/html,x"):
        with pytest.raises(ValueError):
            render(Page.CATEGORY, review_action=bad)


def test_allowed_decision_has_no_block_page() -> None:
    with pytest.raises(ValueError):
        render(Page.NONE, d=Decision(Action.ALLOW, "ks2", "default.allow", "Allowed"))


def test_review_thanks() -> None:
    out = render_review_thanks("SG-3F9K-2Q7M")
    assert "Thank you" in out and "SG-3F9K-2Q7M" in out
    assert "<script" not in out and "<form" not in out
    assert "&lt;script&gt;" in render_review_thanks("<script>")


def test_format_when() -> None:
    assert format_when(dt.datetime(2026, 6, 1, 8, 5, tzinfo=LONDON)) == \
        "Monday 1 June 2026 at 08:05"


def test_references_are_unambiguous_distinct_and_reversible() -> None:
    now = dt.datetime(2026, 11, 23, 9, 15, 42, tzinfo=dt.UTC)
    refs = [make_reference(now, n) for n in range(1000)]
    assert len(set(refs)) == 1000
    for ref in refs:
        assert re.fullmatch(r"SG-[2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4}", ref), ref
    assert parse_reference(refs[7]) == (now.replace(microsecond=0), 7)
    later = make_reference(now + dt.timedelta(seconds=1), 7)
    assert later != refs[7] and parse_reference(later) == (now + dt.timedelta(seconds=1), 7)
    # forgiving of case, spaces and dashes; strict about the alphabet
    assert parse_reference(" " + refs[3].lower().replace("-", "") + " ") == (now, 3)
    assert parse_reference("SG-0OI1-2345") is None
    assert parse_reference("hello") is None
    # same second, same counter: same reference (the counter is the caller's job)
    assert make_reference(now, 5) == make_reference(now, 5)
