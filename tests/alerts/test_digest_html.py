"""The HTML parts of the digest and of the hourly-cap summary: the text part's facts, escaped, nothing fetched from
outside, and nothing of the illegal tier."""
from __future__ import annotations

import html
import re
from pathlib import Path

from alerts.hits import Hit
from alerts.render import Renderer
from proxy.decision import Page
from tests.alerts.helpers import LONDON, MONDAY, Clock, demo_settings, evaluation, service
from tests.alerts.smtpserver import Received, SmtpServer

HACK = 'http://hack.example/?a=<script>alert(1)</script>&b="x"'
ILLEGAL_HOST = "iwf-host.test"
EXTERNAL = re.compile(r"<(img|script|link|iframe|object|embed|style|base|form)\b|\b(src|href|srcset|background)\s*="
                      r"|url\s*\(|@import", re.IGNORECASE)
TEXT_LINE = re.compile(r"^(\d+) x (.+)\n   (.+), group (\S+), (.+)\n   ([^;\n]+)(?:; (?:incident|e\.g\.) (.+))?$",
                       re.MULTILINE)


def text_rows(text: str) -> set[tuple[str, ...]]:
    """The lines of the text part: (count, what, who, group, device, when, incident or example)."""
    return {(*m.groups()[:6], m[7] or "") for m in TEXT_LINE.finditer(text.replace("\r\n", "\n"))}


def html_rows(body: str) -> set[tuple[str, ...]]:
    """The table of the HTML part, cells unescaped (the header row has no <td>)."""
    rows = set()
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.DOTALL):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td>(.*?)</td>", row, re.DOTALL)]
        if cells:
            rows.add(tuple(cells))
    return rows


def words(body: str) -> str:
    """The HTML part as a reader sees it: tags gone, entities unescaped, white space as single spaces."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def assert_safe_html(got: Received) -> None:
    body = got.html
    assert body.startswith("<!DOCTYPE html>") and got.message.get_body(("html",)) is not None
    assert EXTERNAL.search(body) is None, EXTERNAL.search(body)
    assert ILLEGAL_HOST not in got.message.as_string()
    assert "<script>" not in body and "o'brien<" not in body and 'lab&pc"' not in body


async def test_digest_html_has_the_text_facts_escaped_and_no_illegal_address(tmp_path: Path, smtp: SmtpServer,
                                                                            clock: Clock) -> None:
    svc = service(demo_settings(smtp.port, digest_recipients=("dsl@demo-primary.example",)),
                  tmp_path / "db.sqlite3", clock)
    await svc.open()
    try:
        svc.submit(evaluation("http://hack.example/", cats=("hacking",), severity="digest"), HACK)
        svc.submit(evaluation("http://hack.example/", cats=("hacking",), severity="digest"), HACK)
        svc.submit(evaluation("http://203.0.113.9/", cats=("bare-ip",), rule="bare_ip", severity="digest",
                              user="o'brien<b>", device='lab&pc"1"'), "http://203.0.113.9/")
        # ten illegal-tier attempts by one pupil: immediate alerts, and a "repeated" hit for the digest
        illegal = evaluation(f"http://{ILLEGAL_HOST}/abc", cats=("iwf",), rule="illegal_tier", page=Page.ILLEGAL,
                             user="y5.pupil", severity="")
        for _ in range(10):
            svc.submit(illegal, f"http://{ILLEGAL_HOST}/abc", at=clock.advance(seconds=5))
        await svc.run_once()
        clock.advance(minutes=56)                                            # 11:00
        await svc.run_once()
    finally:
        await svc.stop()
    [digest] = [r for r in smtp.received if "DIGEST" in r.subject]
    for got in smtp.received:
        assert ILLEGAL_HOST not in got.message.as_string()
    assert_safe_html(digest)
    rows = text_rows(digest.text)
    assert rows == {
        ("10", "repeated blocked attempts (10 blocked attempts within 5 minutes)", "y5.pupil, pupil", "ks2",
         "ks2-laptop-07 (school device shared by pupils)", "Monday 23 November 2026, 10:04", ""),
        ("2", "breaking into computers", "y3.pupil, pupil", "ks2", "ks2-laptop-07 (school device shared by pupils)",
         "Monday 23 November 2026, 10:04", HACK),
        ("1", "a web address made only of numbers (used to get round the filter)", "o'brien<b>, pupil", "ks2",
         'lab&pc"1" (school device shared by pupils)', "Monday 23 November 2026, 10:04", "http://203.0.113.9/")}
    assert html_rows(digest.html) == rows
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&amp;b=&#34;x&#34;" in digest.html
    heading = "13 flagged hits, Monday 23 November 2026, 10:04 to 11:00."
    assert heading in digest.text and heading in words(digest.html)
    assert "Hourly digest of flagged hits" in words(digest.html)


async def test_summary_html_has_the_text_facts_escaped_and_no_illegal_address(tmp_path: Path, smtp: SmtpServer,
                                                                             clock: Clock) -> None:
    svc = service(demo_settings(smtp.port, max_emails_per_hour=1), tmp_path / "db.sqlite3", clock)
    await svc.open()
    try:
        svc.submit(evaluation(), "http://pornhub.com/")                    # the one alert of the hour
        svc.submit(evaluation("http://nordvpn.com/", cats=("vpn",), user="o'brien<b>", device='lab&pc"1"'),
                   "http://nordvpn.com/?<b>")
        for _ in range(3):
            svc.submit(evaluation(user="y6.pupil"), "http://pornhub.com/<i>")
        svc.submit(evaluation(f"http://{ILLEGAL_HOST}/abc", cats=("iwf",), rule="illegal_tier",
                              page=Page.ILLEGAL, user="y5.pupil"), f"http://{ILLEGAL_HOST}/abc")
        await svc.run_once()
    finally:
        await svc.stop()
    [summary] = [r for r in smtp.received if "summary" in r.subject]
    assert len(smtp.received) == 3                         # the alert, the illegal tier (never capped), the summary
    for got in smtp.received:
        assert ILLEGAL_HOST not in got.message.as_string()
    assert_safe_html(summary)
    rows = text_rows(summary.text)
    assert rows == {
        ("3", "adult content", "y6.pupil, pupil", "ks2", "ks2-laptop-07 (school device shared by pupils)",
         "Monday 23 November 2026, 10:04", "INC-20261123-0003"),
        ("1", "getting round the filter: sites that hide where you are going", "o'brien<b>, pupil", "ks2",
         'lab&pc"1" (school device shared by pupils)', "Monday 23 November 2026, 10:04", "INC-20261123-0002")}
    assert html_rows(summary.html) == rows
    assert "o&#39;brien&lt;b&gt;" in summary.html and "lab&amp;pc&#34;1&#34;" in summary.html
    for fact in ("4 hits from Monday 23 November 2026, 10:04 to Monday 23 November 2026, 10:04.",
                 "1 alert emails have already been sent in the last hour"):
        assert fact in " ".join(summary.text.split()) and fact in words(summary.html), fact


def test_an_illegal_hit_in_a_summary_or_digest_shows_no_address_even_unredacted() -> None:
    """Defence in depth: the views drop the example of an illegal hit even if one arrived with its URL."""
    at = MONDAY.astimezone(LONDON)
    leak = Hit(at=at, kind="illegal", severity="immediate", category="iwf", user="y5.pupil", device="ks2-laptop-07",
               device_class="school_shared", group="ks2", url=f"http://{ILLEGAL_HOST}/abc", search_term="secret words")
    r = Renderer("Demo Primary School", LONDON)
    summary = r.summary([(leak, "INC-20261123-0001")], cap=3, since=at, now=at)
    digest = r.digest([(leak, "")], start=at, end=at, every="hourly")
    for part in (summary.text, summary.html, digest.text, digest.html):
        assert ILLEGAL_HOST not in part and "secret words" not in part
    line = "1 of them were on the illegal-content list (no addresses shown)."
    assert line in summary.text and line in words(summary.html)
    assert text_rows(summary.text) == html_rows(summary.html)
    assert text_rows(digest.text) == html_rows(digest.html)
