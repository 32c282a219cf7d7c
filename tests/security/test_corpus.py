"""The corpus, its encoders and the detectors themselves: each catches what it must, so the page tests can fail."""
from __future__ import annotations

import asyncio
import html
from pathlib import Path

import pytest

from tests.security import browser, corpus, detector


def test_corpus_covers_every_kind() -> None:
    ps = corpus.payloads()
    assert len(ps) >= 50
    for needle in ("<script", "onerror=", "javascript:", "\" onmouseover", "' onmouseover", "<svg", "<math",
                   "{{7*7}}", "${7*7}", "\r\n", "\u202e", "\u200b", "\x00", "%3C", "&lt;", "&#60;", "</style>",
                   "http-equiv=refresh", "<base href", "<form action", "<iframe srcdoc"):
        assert any(needle in p for p in ps), needle
    assert max(len(p) for p in ps) >= 4000


def test_the_detector_sees_payloads_that_were_not_escaped() -> None:
    """Pasted raw into a page, the corpus is caught; escaped, it is not (so the tests above can fail)."""
    page = '<!doctype html><title>x</title><main><dl><dd>{}</dd></dl></main>'
    caught = [p for p in corpus.payloads() if detector.findings(page.format(p))]
    assert len(caught) >= 40, len(caught)
    for must in ("<script>document.title='PWNED'</script>", "<iframe srcdoc=", "<base href=", "<meta http-equiv",
                 "<a href=\"javascript:", "<svg onload"):
        assert any(p.startswith(must) for p in caught), must
    assert all(detector.findings(page.format(html.escape(p))) == [] for p in corpus.payloads())
    assert detector.terminal_findings("ok\x1b[31m") and detector.terminal_findings("a\u202eb")
    assert detector.terminal_findings("plain text\n") == []


def test_payloads_travel_as_sent() -> None:
    p = "<a href=\"x\">é #?"
    assert corpus.for_path(p) == "<a%20href=\"x\">%C3%A9%20%23%3F"
    assert corpus.for_path("%3Cb%ZZ") == "%3Cb%25ZZ"
    assert corpus.for_header("a\r\nb\x00") == "a%0D%0Ab%00"
    assert corpus.for_login("a:b") is None and corpus.for_login("<b>") == "<b>"
    assert corpus.batches(["aa", "bb", "cccccc"], 6) == [["aa", "bb"], ["cccccc"]]


@pytest.mark.skipif(not browser.CHROMIUM.exists(), reason="/usr/bin/chromium not found")
def test_chromium_judge_is_live(tmp_path: Path) -> None:
    """The browser half of the detector: a page that runs a payload is caught by title and console."""
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><title>x</title><script>document.title='PWNED';console.log('SGXSS')</script>")
    got = asyncio.run(browser.load(page, tmp_path / "profile"))
    assert detector.page_title(got.dom) == "PWNED"
    assert detector.console_findings(got.console)
