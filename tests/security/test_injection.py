"""Hostile text through the real proxy never becomes markup, script or terminal control anywhere it shows.

The corpus (`injections.txt`) goes into URLs, search terms, review reasons,
user names and headers (see `hostile.py`); then every page it reaches (block
pages, the weekly report, the alert emails) is loaded in headless Chromium
with scripts on and judged twice without trusting any script: the dumped DOM
holds no element, handler or URL from a payload, and the console shows no
Content-Security-Policy violation (a script the policy had to stop) and no
marker.  The same pages pass the pure-Python detector, and each page must
show the payloads it was sent as text, so a page that dropped them cannot
pass by saying nothing.
"""
from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.security import browser, corpus, detector, hostile

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not browser.CHROMIUM.exists(), reason="/usr/bin/chromium not found: install the Debian "
                       "package `chromium` to judge the pages in a real browser"),
]

BLOCK_FORM = ("http://schoolgate.local/review",)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def morning(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[hostile.Hostile, dict[str, browser.Loaded]]]:
    tmp = tmp_path_factory.mktemp("hostile")
    h = await hostile.start(tmp)
    try:
        await hostile.browse(h)
        await hostile.collect(h, tmp / "pages")
        pages = h.browser_pages()
        loaded = await browser.load_all([p.path for p in pages if p.path], tmp / "chromium")
        yield h, {p.name: got for p, got in zip(pages, loaded, strict=True)}
    finally:
        await hostile.stop(h)


def _judge(name: str, raw: str, got: browser.Loaded | None, forms: tuple[str, ...] = ()) -> list[str]:
    problems = [f"{name} (HTML): {f}" for f in detector.findings(raw, allowed_forms=forms)]
    if got is not None and not got.settled:
        problems.append(f"{name}: never finished loading in Chromium (an alert() dialog or a navigation?)")
    elif got is not None:
        problems += [f"{name} (Chromium DOM): {f}" for f in detector.findings(got.dom, allowed_forms=forms)]
        problems += [f"{name} (Chromium console): {f}" for f in detector.console_findings(got.console)]
        if detector.page_title(got.dom) == "PWNED":
            problems.append(f"{name}: a payload ran (title PWNED)")
    return problems


def _normal(text: str) -> str:
    """Text as an HTML parser gives it back: CR and CRLF become LF, NUL becomes U+FFFD."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "\ufffd")


async def test_block_pages_show_every_payload_as_text_only(morning: tuple[hostile.Hostile, dict[str, browser.Loaded]]
                                                          ) -> None:
    h, loaded = morning
    assert len(h.block_pages) >= 16 and h.blocks_page is not None
    forms = BLOCK_FORM * sum('action="http://schoolgate.local/review"' in p.html for p in h.block_pages
                             if not p.in_browser)
    combined = loaded[h.blocks_page.name]
    problems = _judge("all block pages", h.blocks_page.html, combined, forms)
    combined_text = detector.page_text(combined.dom)
    for page in h.block_pages:
        got = loaded.get(page.name)
        problems += _judge(page.name, page.html, got, BLOCK_FORM)
        text = detector.page_text(got.dom) if got else combined_text
        for sent in page.sent:
            shown = sent if len(sent) <= 500 else sent[:500] + "\u2026"
            if _normal(shown) not in text:
                problems.append(f"{page.name}: does not show {shown[:80]!r}")
    assert not problems, "\n".join(problems)
    shown_logins = {u for p in h.block_pages for u in p.sent[-1:]}
    assert len(shown_logins) == len(h.logins)   # every hostile user name was on a page


async def test_other_answers_are_inert(morning: tuple[hostile.Hostile, dict[str, browser.Loaded]]) -> None:
    h, _ = morning
    problems = [p for page in h.other_pages for p in _judge(page.name, page.html, None, BLOCK_FORM)]
    assert not problems, "\n".join(problems)
    for answer in h.answers:   # CRLF in a URL or header never became a header of the answer
        assert "x-injected" not in answer.headers and "set-cookie" not in answer.headers, answer.headers


async def test_nothing_injected_reached_the_upstream(morning: tuple[hostile.Hostile, dict[str, browser.Loaded]]) -> None:
    h, _ = morning
    seen = h.school.origin.seen
    assert seen, "the searches should have reached the origin"
    for request in seen:
        headers = request["headers"]
        assert isinstance(headers, dict)
        assert "x-injected" not in headers and "set-cookie" not in headers
        assert "proxy-authorization" not in headers
        assert request["host"] == "www.google.com"       # every flagged site was stopped at the proxy


async def test_review_requests_are_stored_verbatim(morning: tuple[hostile.Hostile, dict[str, browser.Loaded]]) -> None:
    h, _ = morning
    stored = [reason for reason, _ in h.stored_reviews]
    assert stored == h.reviews_sent
    assert {user for _, user in h.stored_reviews} <= set(h.logins)


async def test_requests_list_prints_no_terminal_controls(morning: tuple[hostile.Hostile, dict[str, browser.Loaded]]
                                                         ) -> None:
    h, _ = morning
    out = h.cli_output
    assert detector.terminal_findings(out) == []
    lines = out.splitlines()
    assert len(lines) == len(h.stored_reviews), "a reason or user name broke a line of the listing"
    assert "<script>document.title='PWNED'</script>" in out   # shown, as text


async def test_weekly_report_shows_payloads_as_text_only(morning: tuple[hostile.Hostile, dict[str, browser.Loaded]]
                                                         ) -> None:
    h, loaded = morning
    assert h.report is not None
    problems = _judge("weekly report", h.report.html, loaded[h.report.name])
    assert not problems, "\n".join(problems)
    text = detector.page_text(loaded[h.report.name].dom)
    dangerous = [p for p in corpus.payloads() if "<" in p and len(p) < 120]
    assert sum(f"suicide {p}" in text for p in dangerous) >= len(dangerous) // 2, "flagged searches not shown"
    assert sum(_normal(r[:200]) in text for r in h.reviews_sent if "<" in r) >= 3, "review reasons not shown"


async def test_alert_emails_show_payloads_as_text_only(morning: tuple[hostile.Hostile, dict[str, browser.Loaded]]
                                                       ) -> None:
    h, loaded = morning
    assert h.emails and all(e.html for e in h.emails) and h.emails_page is not None
    problems = [p for e in h.emails for p in _judge(e.name, e.html, None)]
    problems += _judge("all emails", h.emails_page.html, loaded[h.emails_page.name])
    assert not problems, "\n".join(problems)
    text = detector.page_text(loaded[h.emails_page.name].dom)
    assert "<script>document.title='PWNED'</script>" in text
    subjects = [str(got.message["Subject"]) for got in h.smtp.received]
    assert all("\n" not in s and "\r" not in s for s in subjects)
