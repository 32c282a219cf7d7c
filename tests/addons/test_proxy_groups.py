"""The demo school's policy through a real proxy: groups, walled garden, hours, overrides, register, devices."""
from __future__ import annotations

import datetime as dt

import httpx

from proxy.db import open_db
from proxy.overrides import add_override
from proxy.records import read_visits
from tests.support.school import School

KS1, KS2, TEACHER, LOANED_Y3, LOANED_Y5, LOANED_Y6 = (
    "127.0.1.5", "127.0.2.5", "127.0.3.11", "127.0.4.21", "127.0.4.25", "127.0.4.26")
STAFF_OWNED, VISITOR, PUPIL_OWNED = "127.0.50.5", "127.0.60.5", "127.0.70.5"


def rule(resp: httpx.Response) -> str:
    return resp.headers.get("x-schoolgate-rule", "")


async def test_ks2_blocks_gambling_and_allows_the_rest(school: School) -> None:
    c = school.client(KS2)
    blocked = await c.get("http://www.bet365.com/")
    assert blocked.status_code == 403 and rule(blocked) == "category.blocked"
    assert "gambling" in blocked.text.lower()
    ok = await c.get("http://example.org/hello.html")
    assert ok.status_code == 200 and ok.json()["host"] == "example.org"
    social = await c.get("http://www.facebook.com/")
    assert social.status_code == 403 and rule(social) == "category.blocked"
    assert len(school.origin.seen) == 1   # the blocked requests never reached the upstream


async def test_games_blocked_in_school_hours_only(school: School) -> None:
    c = school.client(KS2)
    r = await c.get("http://www.miniclip.com/")
    assert r.status_code == 403 and rule(r) == "category.school_hours"
    school.clock.now = school.clock.now.replace(hour=16, minute=30)
    assert (await c.get("http://www.miniclip.com/")).status_code == 200
    school.clock.now = school.clock.now + dt.timedelta(days=5)   # Saturday
    assert (await c.get("http://www.miniclip.com/")).status_code == 200


async def test_teacher_override_lifts_games_then_expires(school: School) -> None:
    c = school.client(KS2)
    assert (await c.get("http://miniclip.com/")).status_code == 403
    conn = await open_db(school.ctx.db_path)
    await add_override(conn, school.ctx.settings, group="ks2", category="games", minutes=30, by="teacher",
                       reason="maths games lesson", now=school.clock())
    await conn.close()
    await school.runtime.refresh()
    r = await c.get("http://miniclip.com/")
    assert r.status_code == 200
    assert (await school.client(KS1).get("http://miniclip.com/")).status_code == 403   # another group
    school.clock.now += dt.timedelta(minutes=31)
    assert (await c.get("http://miniclip.com/")).status_code == 403


async def test_override_never_lifts_the_illegal_tier(school: School) -> None:
    conn = await open_db(school.ctx.db_path)
    await add_override(conn, school.ctx.settings, group="staff", domain="iwf-test-entry.test", minutes=30,
                       by="teacher", reason="should not work", now=school.clock())
    await conn.close()
    await school.runtime.refresh()
    r = await school.client(TEACHER).get("http://iwf-test-entry.test/some/page?x=1")
    assert r.status_code == 403 and rule(r) == "illegal_tier"
    assert "iwf-test-entry" not in r.text and "/some/page" not in r.text
    assert "Internet Watch Foundation" in r.text


async def test_ks1_walled_garden(school: School) -> None:
    c = school.client(KS1)
    assert (await c.get("http://www.cbeebies.com/")).status_code == 200
    r = await c.get("http://example.org/")
    assert r.status_code == 403 and rule(r) == "walled_garden"


async def test_staff_on_assigned_laptop(school: School) -> None:
    c = school.client(TEACHER)
    assert (await c.get("http://www.facebook.com/")).status_code == 200
    assert rule(await c.get("http://bet365.com/")) == "category.blocked"
    assert (await c.get("http://miniclip.com/")).status_code == 200


async def test_register_states_on_loaned_laptops(school: School) -> None:
    assert (await school.client(LOANED_Y3).get("http://example.org/")).status_code == 200
    r = await school.client(LOANED_Y5).get("http://example.org/")
    assert r.status_code == 403 and rule(r) == "register.no_consent"
    r = await school.client(LOANED_Y6).get("http://example.org/")
    assert r.status_code == 403 and rule(r) == "register.banned"


async def test_device_classes(school: School) -> None:
    r = await school.client(PUPIL_OWNED).get("http://example.org/")
    assert r.status_code == 403 and rule(r) == "device.not_allowed"
    visitor = school.client(VISITOR)
    r = await visitor.get("http://127.0.0.9/intranet/")
    assert r.status_code == 403 and rule(r) == "network.internal_only_device"
    assert rule(await visitor.get("http://facebook.com/")) == "category.blocked"   # guest group
    assert (await visitor.get("http://example.org/")).status_code == 200
    staff_own = school.client(STAFF_OWNED)
    assert rule(await staff_own.get("http://127.0.0.9/")) == "network.internal_only_device"
    assert (await staff_own.get("http://facebook.com/")).status_code == 200


async def test_bare_ip_blocked_for_pupils(school: School) -> None:
    r = await school.client(KS2).get("http://93.184.216.34/")
    assert r.status_code == 403 and rule(r) == "bare_ip"


async def test_visit_rows_are_written(school: School) -> None:
    await school.client(KS2).get("http://www.bet365.com/")
    await school.client(TEACHER).get("http://example.org/page.html")
    await school.runtime.writer.flush()
    conn = await open_db(school.ctx.db_path)
    rows = await read_visits(conn, 0, 2**40)
    await conn.close()
    by_host = {r.record.host: r.record for r in rows}
    assert by_host["www.bet365.com"].action == "block"
    assert by_host["www.bet365.com"].group == "ks2"
    assert "gambling" in by_host["www.bet365.com"].categories
    assert by_host["www.bet365.com"].client_ip == KS2
    assert by_host["example.org"].user == "teacher" and by_host["example.org"].device == "teacher-laptop"
    assert by_host["example.org"].action == "allow" and by_host["example.org"].status == 200


async def test_nothing_passes_unfiltered_while_the_runtime_is_not_running() -> None:
    from mitmproxy.test import tflow

    from addons import RuntimeRef
    from addons.identify import Identify

    addon = Identify(RuntimeRef(None))
    flow = tflow.tflow()
    addon.requestheaders(flow)
    assert flow.response is not None and flow.response.status_code == 503
    client = tflow.tclient_conn()
    addon.client_connected(client)
    assert client.error
