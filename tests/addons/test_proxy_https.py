"""HTTPS interception and pass-through, safe search, search terms, circumvention and the review form."""
from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from proxy.db import open_db
from proxy.records import read_visits
from proxy.reviews import decide_request, list_requests
from tests.support.school import School, proxied_transport, start_school

KS2, TEACHER, VISITOR = "127.0.2.5", "127.0.3.11", "127.0.60.5"


def rule(resp: httpx.Response) -> str:
    return resp.headers.get("x-schoolgate-rule", "")


async def _visits(school: School) -> list:
    await school.runtime.writer.flush()
    conn = await open_db(school.ctx.db_path)
    rows = await read_visits(conn, 0, 2**40)
    await conn.close()
    return [r.record for r in rows]


async def test_intercepted_https_gets_the_block_page(school: School) -> None:
    c = school.client(KS2)
    r = await c.get("https://www.bet365.com/login")
    assert r.status_code == 403 and rule(r) == "category.blocked"
    ok = await c.get("https://example.org/secure.html")
    assert ok.status_code == 200 and ok.json()["host"] == "example.org"
    visits = await _visits(school)
    assert any(v.host == "example.org" and v.intercepted and v.scheme == "https" for v in visits)


async def test_visitor_devices_pass_through_and_are_decided_on_the_connect_host(school: School) -> None:
    c = school.client(VISITOR)
    # not decrypted: the client sees the origin's own certificate, not the school's CA
    with pytest.raises(httpx.ConnectError):
        await c.get("https://example.org/")
    insecure = httpx.AsyncClient(transport=proxied_transport(school.proxy_url, VISITOR, False), timeout=10)
    try:
        ok = await insecure.get("https://example.org/")
        assert ok.status_code == 200
        with pytest.raises(httpx.ProxyError):
            await insecure.get("https://www.facebook.com/")   # guest blocks social networks: CONNECT refused
    finally:
        await insecure.aclose()
    visits = await _visits(school)
    refused = [v for v in visits if v.host == "www.facebook.com"]
    assert refused and refused[0].action == "block" and refused[0].method == "CONNECT"
    assert any(v.host == "example.org" and v.action == "allow" and not v.intercepted for v in visits)


async def test_safe_search_and_youtube_restrict(school: School) -> None:
    pupil = school.client(KS2)
    r = await pupil.get("https://www.google.co.uk/search?q=volcanoes")
    assert r.status_code == 200
    assert "safe=active" in r.json()["target"]
    r = await pupil.get("https://www.bing.com/search?q=volcanoes")
    assert "adlt=strict" in r.json()["target"]
    r = await pupil.get("https://www.youtube.com/results?search_query=volcanoes")
    assert r.json()["headers"]["youtube-restrict"] == "Strict"
    staff = school.client(TEACHER)
    r = await staff.get("https://www.youtube.com/watch?v=abc")
    assert r.json()["headers"]["youtube-restrict"] == "Moderate"


async def test_search_terms_are_captured_and_watch_lists_flag(school: School) -> None:
    c = school.client(KS2)
    await c.get("https://www.google.com/search?q=volcano+facts")
    r = await c.get("https://www.google.com/search?q=how+to+kill+myself")
    assert r.status_code == 200
    visits = {v.search_term: v for v in await _visits(school) if v.search_term}
    assert not visits["volcano facts"].flagged
    assert visits["how to kill myself"].flagged
    assert "q=how" in visits["how to kill myself"].path    # query kept for search engines only
    await c.get("http://example.org/page?secret=1")
    assert all("secret" not in v.path for v in await _visits(school))


async def test_circumvention_cases(school: School) -> None:
    c = school.client(KS2)
    r = await c.get("https://nordvpn.com/download")
    assert r.status_code == 403 and rule(r) == "circumvention.category_vpn"
    r = await c.post("https://example.org/dns-query", content=b"\x00\x00",
                     headers={"content-type": "application/dns-message"})
    assert r.status_code == 403 and rule(r).startswith("circumvention.")
    r = await c.get("https://example-org.translate.goog/page")
    assert r.status_code == 403 and rule(r).startswith("circumvention.")
    with pytest.raises(httpx.ProxyError):
        await c.get("https://example.org:8443/")           # CONNECT to another port than 443
    visits = await _visits(school)
    assert any(v.rule == "circumvention.connect_port" for v in visits)


async def test_review_form_stores_a_request_that_support_can_approve(school: School) -> None:
    c = school.client(KS2)
    page = await c.get("http://www.paddypower.com/")
    assert page.status_code == 403
    ref = page.headers["x-schoolgate-reference"]
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    assert action and action.group(1).endswith("/review")
    fields = dict(re.findall(r'<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"', page.text))
    assert fields, page.text
    form = {**fields, "reason": "We are studying probability in maths"}
    bad = await c.post(action.group(1), data={**form, next(k for k in fields if "csrf" in k): "forged"})
    assert bad.status_code == 403
    ok = await c.post(action.group(1), data=form)
    assert ok.status_code == 200 and ref in ok.text
    conn = await open_db(school.ctx.db_path)
    reqs = await list_requests(conn)
    assert [(r.ref, r.host, r.reason_text) for r in reqs] == [(ref, "www.paddypower.com", form["reason"])]
    await decide_request(conn, reqs[0].id, approve=True, by="tech", reason="ok for maths", now=school.clock())
    await conn.close()
    await school.runtime.refresh()
    assert (await c.get("http://www.paddypower.com/")).status_code == 200


async def test_outsiders_are_refused(tmp_path: Path) -> None:
    school = await start_school(tmp_path, replace={'cidr = "127.0.0.0/8"': 'cidr = "127.0.0.1/32"'})
    try:
        with pytest.raises((httpx.ProxyError, httpx.RemoteProtocolError, httpx.ReadError, httpx.ConnectError)):
            await school.client("127.0.99.1").get("http://example.org/")
        assert school.origin.seen == []
        assert (await school.client("127.0.2.5").get("http://example.org/")).status_code == 200
    finally:
        await school.close()


async def test_staff_banking_is_not_decrypted_but_pupils_are(school: School) -> None:
    with pytest.raises(httpx.ConnectError):                  # the bank's own certificate: passed through
        await school.client(TEACHER).get("https://www.natwest.com/")
    r = await school.client(KS2).get("https://www.natwest.com/")   # pupils: intercepted, full URL filtered
    assert r.status_code == 200 and r.json()["host"] == "www.natwest.com"


async def test_web_proxy_wrappers_are_circumvention(school: School) -> None:
    c = school.client(KS2)
    r = await c.get("http://unknown-proxy.example/browse.php?u=http%3A%2F%2Fwww.bet365.com%2F")
    assert r.status_code == 403 and rule(r).startswith("circumvention.")
    r = await c.get("http://example.org/go?url=https://www.facebook.com/")
    assert r.status_code == 403 and rule(r).startswith("circumvention.")
    visits = await _visits(school)
    assert {v.rule for v in visits if v.action == "block"} <= {"circumvention.web_proxy", "circumvention.url_wrapper"}


async def test_revoked_access_gets_the_access_removed_page(school: School) -> None:
    from proxy import register

    conn = await open_db(school.ctx.db_path)
    await register.revoke(conn, "y3.pupil", by="head", reason="parents withdrew permission")
    await conn.close()
    await school.runtime.refresh()
    r = await school.client("127.0.4.21").get("http://example.org/")
    assert r.status_code == 403 and rule(r) == "register.revoked"
    assert "removed" in r.text.lower() or "withdrawn" in r.text.lower()
