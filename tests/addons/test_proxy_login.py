"""Proxy login (mitmproxy's own proxyauth, htpasswd): a logged-in user takes precedence over the device."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
from passlib.apache import HtpasswdFile

from proxy.db import open_db
from proxy.records import read_visits
from tests.support.school import start_school


async def test_login_takes_precedence_and_passwords_are_never_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ht = HtpasswdFile(str(tmp_path / "users.htpasswd"), new=True)
    for user, password in (("y1.pupil", "Sunflower-77"), ("teacher", "Chalk&Board-42"), ("y5.noconsent", "Kite-13")):
        ht.set_password(user, password)
    ht.save()
    school = await start_school(tmp_path, replace={
        'auth = "none"': f'auth = "htpasswd"\nhtpasswd = "{tmp_path / "users.htpasswd"}"'})
    try:
        anonymous = school.client("127.0.2.5")
        r = await anonymous.get("http://example.org/")
        assert r.status_code == 407                       # login required
        wrong = school.client("127.0.2.5", auth=("teacher", "guess"))
        assert (await wrong.get("http://example.org/")).status_code == 407
        pupil = school.client("127.0.2.5", auth=("y1.pupil", "Sunflower-77"))   # a KS1 pupil on a KS2 laptop
        r = await pupil.get("http://example.org/")
        assert r.status_code == 403 and r.headers["x-schoolgate-rule"] == "walled_garden"
        teacher = school.client("127.0.2.5", auth=("teacher", "Chalk&Board-42"))
        assert (await teacher.get("http://www.facebook.com/")).status_code == 200
        no_consent = school.client("127.0.2.5", auth=("y5.noconsent", "Kite-13"))
        r = await no_consent.get("http://example.org/")
        assert r.headers["x-schoolgate-rule"] == "register.no_consent"
        await school.runtime.writer.flush()
        conn = await open_db(school.ctx.db_path)
        rows = [v.record for v in await read_visits(conn, 0, 2**40)]
        await conn.close()
        assert {("y1.pupil", "ks1"), ("teacher", "staff"), ("y5.noconsent", "ks2")} <= {(v.user, v.group) for v in rows}
    finally:
        await school.close()
    logged = caplog.text + (school.ctx.data_dir / "schoolgate.db").read_bytes().decode("latin-1")
    for secret in ("Sunflower-77", "Chalk&Board-42", "Kite-13", "guess"):
        assert secret not in logged
