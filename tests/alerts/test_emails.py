"""Alert emails received on a real SMTP server: content for each rule and severity, the illegal tier's redaction."""
from __future__ import annotations

import re
from pathlib import Path

from proxy.decision import Action, Page
from tests.alerts.helpers import Clock, demo_settings, evaluation, service
from tests.alerts.smtpserver import SmtpServer

RECIPIENTS = ["esafety@demo-primary.example", "head@demo-primary.example"]


async def _one(tmp_path: Path, smtp: SmtpServer, clock: Clock, ev, url: str, **alerts):  # type: ignore[no-untyped-def]
    s = demo_settings(smtp.port, **alerts)
    svc = service(s, tmp_path / "db.sqlite3", clock)
    await svc.open()
    try:
        svc.submit(ev, url)
        result = await svc.run_once()
    finally:
        await svc.stop()
    assert result.sent == 1, result
    [got] = await smtp.wait_for(1)
    return got


async def test_adult_site_alert_names_day_time_device_user_category(tmp_path: Path, smtp: SmtpServer,
                                                                    clock: Clock) -> None:
    got = await _one(tmp_path, smtp, clock, evaluation(), "http://pornhub.com/videos?x=1")
    assert sorted(got.recipients) == sorted(RECIPIENTS)
    assert got.sender == "schoolgate@demo-primary.example"
    assert got.subject == "[Schoolgate] IMMEDIATE: adult content - ks2"
    text = got.text
    for expected in ("Monday 23 November 2026, 10:04", "y3.pupil, pupil", "ks2-laptop-07 (school device shared by "
                     "pupils)", "10.20.2.17", "adult content (UK category: pornography); list: adult",
                     "http://pornhub.com/videos?x=1", "blocked by rule category.blocked",
                     "Deliberately accessing or trying to access offensive or pornographic material",
                     "Inform parents/carers", "Removal of network/internet access rights"):
        assert expected in text, expected
    ref = re.search(r"Incident: +(INC-20261123-\d{4})", text)
    assert ref is not None, text
    assert f"schoolgate incidents record {ref[1]}" in text
    html = got.html
    assert "Monday 23 November 2026, 10:04" in html and "y3.pupil" in html and ref[1] in html
    assert "<a " not in html    # addresses are shown as text, never as links
    assert got.message["Message-ID"].startswith("<schoolgate.alert.1.")
    assert got.message["Importance"] == "high"


async def test_watch_list_search_alert_shows_the_term(tmp_path: Path, smtp: SmtpServer, clock: Clock) -> None:
    ev = evaluation("https://www.google.com/search?q=self_harm+how+to", cats=("searchengines",),
                    action=Action.ALLOW, rule="allow.search_watch", search="self_harm how to", watch_phrase="how to")
    got = await _one(tmp_path, smtp, clock, ev, "https://www.google.com/search?q=self_harm+how+to")
    assert got.subject == "[Schoolgate] IMMEDIATE: a search matching the self-harm and suicide watch list - ks2"
    assert '"self_harm how to"' in got.text
    assert "(UK category: self-harm); list: watch list self_harm" in got.text
    assert "allowed by rule allow.search_watch" in got.text
    assert "child protection procedures" in got.text


async def test_circumvention_alert(tmp_path: Path, smtp: SmtpServer, clock: Clock) -> None:
    got = await _one(tmp_path, smtp, clock, evaluation("http://nordvpn.com/", cats=("vpn",)), "http://nordvpn.com/")
    assert got.subject == "[Schoolgate] IMMEDIATE: getting round the filter: sites that hide where you are going - ks2"
    assert "Using proxy sites or other means to subvert the school's filtering system" in got.text


async def test_staff_alert_suggests_the_staff_table(tmp_path: Path, smtp: SmtpServer, clock: Clock) -> None:
    ev = evaluation("http://pornhub.com/", user="teacher", role="staff", device="staff-laptop-11",
                    device_class="school_single_user", ip="10.20.3.11", group="staff")
    got = await _one(tmp_path, smtp, clock, ev, "http://pornhub.com/")
    assert "teacher, staff" in got.text and "school device for one person" in got.text
    assert "Refer to Local Authority/HR" in got.text and "Disciplinary action" in got.text
    assert "Inform parents/carers" not in got.text
    assert "referred to the Head Teacher (policy 4.2)" in got.text


async def test_illegal_tier_email_has_no_url_host_link_or_content(tmp_path: Path, smtp: SmtpServer,
                                                                 clock: Clock) -> None:
    ev = evaluation("http://iwf-test-entry.test/images/abc", cats=("iwf",), rule="illegal_tier", page=Page.ILLEGAL)
    got = await _one(tmp_path, smtp, clock, ev, "http://iwf-test-entry.test/images/abc")
    raw = got.message.as_string()
    for forbidden in ("iwf-test-entry", "/images/abc", "http://", "https://", "href", "<img", "www."):
        assert forbidden not in raw, forbidden
    assert got.subject.startswith("[Schoolgate] IMMEDIATE: illegal content - ks2 - INC-20261123-")
    text = got.text
    for expected in ("Reference:  INC-20261123-", "Monday 23 November 2026, 10:04", "y3.pupil",
                     "ks2-laptop-07", "10.20.2.17", "Do not investigate", "Secure the device",
                     "Contact the police", "Internet Watch Foundation"):
        assert expected in text, expected
    # and the store never held it either
    import sqlite3

    db = sqlite3.connect(tmp_path / "db.sqlite3")
    dump = "\n".join(db.iterdump())
    assert "iwf-test-entry" not in dump


async def test_digest_hit_is_not_sent_at_once(tmp_path: Path, smtp: SmtpServer, clock: Clock) -> None:
    s = demo_settings(smtp.port)
    svc = service(s, tmp_path / "db.sqlite3", clock)
    await svc.open()
    try:
        svc.submit(evaluation("http://hack.example/", cats=("hacking",), severity="digest"), "http://hack.example/")
        assert (await svc.run_once()).sent == 0
    finally:
        await svc.stop()
    assert smtp.received == []


async def test_html_is_autoescaped(tmp_path: Path, smtp: SmtpServer, clock: Clock) -> None:
    url = 'http://pornhub.com/"><script>alert(1)</script>'
    got = await _one(tmp_path, smtp, clock, evaluation(), url)
    assert "<script>" not in got.html and "&lt;script&gt;" in got.html
    assert url in got.text
