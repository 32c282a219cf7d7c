"""A hostile morning at the demo school: every corpus payload sent through the real proxy, everywhere.

`run_hostile(tmp)` starts the demo school (proxy login by htpasswd, a real
SMTP server), and from KS2 laptops on loopback:
  - requests flagged (adult) URLs with payloads in the path and the query,
    logged in as users whose names are payloads, with payloads as User-Agent
    and Referer: the block pages are kept;
  - sends the review form of each block page with payloads as the reason;
  - searches Google for "suicide <payload>" (a watch-list hit: alert email);
  - tries payloads as host names and as the Host header of an absolute request;
then collects what each payload reached: the stored review requests, the
output of `schoolgate requests list` (a real process), the weekly report
built from the visits, and the alert emails the SMTP server received.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import sqlite3
import subprocess
import sys
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from passlib.apache import HtpasswdFile

from reports.period import parse_week
from reports.produce import make_weekly
from tests.alerts.smtpserver import SmtpServer
from tests.security import corpus, rawhttp
from tests.support.school import LONDON, School, start_school

REPO = Path(__file__).resolve().parents[2]
PUPIL, PUPIL_PW = "y3.pupil", "Daffodil-93"
URL_ROOM = 470            # the block page shows the first 500 characters of the address
FLAGGED = "http://pornhub.com/"
REVIEWS_PER_CLIENT = 5    # the portal's limit in ten minutes


@dataclass
class Page:
    name: str
    html: str
    sent: list[str]                      # what was sent, as it should show in the page's text
    path: Path | None = None
    in_browser: bool = False             # loaded in Chromium on its own, exactly as served (others: combined)


@dataclass
class Hostile:
    school: School
    smtp: SmtpServer
    logins: dict[str, str]               # payload user name -> password
    block_pages: list[Page] = field(default_factory=list)
    other_pages: list[Page] = field(default_factory=list)     # review thanks, mitmproxy's own error pages
    reviews_sent: list[str] = field(default_factory=list)
    terms_sent: list[str] = field(default_factory=list)
    stored_reviews: list[tuple[str, str | None]] = field(default_factory=list)   # (reason_text, user)
    cli_output: str = ""
    report: Page | None = None
    emails: list[Page] = field(default_factory=list)
    answers: list[rawhttp.Answer] = field(default_factory=list)
    emails_page: Page | None = None      # every email's body in one document
    blocks_page: Page | None = None      # every block page's body in one document

    def browser_pages(self) -> list[Page]:
        pages = [p for p in self.block_pages if p.in_browser] + [self.blocks_page, self.report, self.emails_page]
        return [p for p in pages if p is not None]


def all_bodies(documents: list[str], title: str) -> str:
    """Several HTML pages as one document: the first one's head, then each body in turn.

    Headless Chromium takes one page per run, and starting it is most of the
    cost; each payload keeps the context it had in its own page (a definition
    in the block page's details, a table cell or list item in an email), and
    the first head brings its Content-Security-Policy, if it has one."""
    head = re.search(r"<head[^>]*>(.*?)</head>", documents[0], re.S | re.I) if documents else None
    head_html = head.group(1) if head else f'<meta charset="utf-8"><title>{title}</title>'
    bodies = []
    for doc in documents:
        m = re.search(r"<body[^>]*>(.*)</body>", doc, re.S | re.I)
        bodies.append(m.group(1) if m else doc)
    return f"<!DOCTYPE html>\n<html><head>{head_html}</head><body>\n" + "\n<hr>\n".join(bodies) + \
        "\n</body></html>\n"


def _write_logins(tmp: Path) -> dict[str, str]:
    logins = {PUPIL: PUPIL_PW}
    names = [n for n in (corpus.for_login(p) for p in corpus.payloads()) if n]
    for i, name in enumerate(names[::4][:8]):
        logins[name] = f"pw-{i}-Tulip"
    ht = HtpasswdFile(str(tmp / "users.htpasswd"), new=True)
    for user, password in logins.items():
        ht.set_password(user, password)
    ht.save()
    return logins


def _auth(user: str, password: str) -> tuple[str, str]:
    return ("Proxy-Authorization", rawhttp.basic(user, password))


async def start(tmp: Path) -> Hostile:
    smtp = SmtpServer()
    await smtp.start()
    logins = _write_logins(tmp)
    school = await start_school(tmp, replace={
        "port = 25\n": f"port = {smtp.port}\ntimeout_s = 5\n",
        'auth = "none"': f'auth = "htpasswd"\nhtpasswd = "{tmp / "users.htpasswd"}"'})
    return Hostile(school, smtp, logins)


async def _get(h: Hostile, ip: str, target: str, login: tuple[str, str],
               headers: list[tuple[str, str]] | None = None) -> rawhttp.Answer:
    addr = h.school.service.address
    assert addr is not None
    extra = list(headers or [])
    if not any(k.lower() == "host" for k, _ in extra):
        extra.append(("Host", urlsplit(target).netloc))
    answer = await rawhttp.send(addr, ip, "GET", target, [_auth(*login), *extra])
    h.answers.append(answer)
    return answer


def _form_fields(html: str) -> tuple[str, str]:
    ref = re.search(r'name="reference" value="([^"]+)"', html)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert ref and token, "no review form on the block page"
    return ref.group(1), token.group(1)


async def _review(h: Hostile, ip: str, login: tuple[str, str], ref: str, token: str, reason: str) -> None:
    addr = h.school.service.address
    assert addr is not None
    body = urlencode({"reference": ref, "csrf_token": token, "why": reason}).encode()
    answer = await rawhttp.send(addr, ip, "POST", "http://schoolgate.local/review", [
        _auth(*login), ("Host", "schoolgate.local"), ("Content-Type", "application/x-www-form-urlencoded")], body)
    assert answer.status == 200, (answer.status, answer.text[:200])
    h.reviews_sent.append(reason[:2000])
    h.other_pages.append(Page("review-thanks", answer.text, []))


async def browse(h: Hostile) -> None:
    """Every payload into every place a visitor's text can go."""
    ps = list(corpus.payloads())
    users = list(h.logins.items())
    pupil, hostile_users = users[0], users[1:]
    client = 10
    used: set[str] = set()
    for kind, encode, joiner in (("path", corpus.for_path, "/"), ("query", corpus.for_query, "&")):
        parts = [encode(p) if kind == "path" else f"q{i}={encode(p)}" for i, p in enumerate(ps)]
        for n, batch in enumerate(corpus.batches(parts, URL_ROOM)):
            target = FLAGGED + (joiner.join(batch) if kind == "path" else "s?" + joiner.join(batch))
            ip = f"127.0.0.{client}"
            client += 1
            # an unknown (hostile) user name gets the "not yet authorised" page, which names them;
            # a pupil the category page with its review form
            login = hostile_users[n % len(hostile_users)] if kind == "path" else pupil
            used.add(login[0])
            payload = ps[n % len(ps)]
            answer = await _get(h, ip, target, login, [("User-Agent", corpus.for_header(payload)),
                                                       ("Referer", corpus.for_header(payload))])
            assert answer.status == 403, (answer.status, target[:100], answer.text[:300])
            shown = [target[:500]] if len(target) > 500 else [target]
            h.block_pages.append(Page(f"block-{kind}-{n}", answer.text, shown + [login[0]],
                                      in_browser=(kind, n) == ("path", 0)))
            if kind == "path":   # a pupil asks for a review, with this page's payloads as the reason
                mine = FLAGGED + f"review-{n}"
                answer = await _get(h, ip, mine, pupil)
                h.block_pages.append(Page(f"block-review-{n}", answer.text, [mine, pupil[0]]))
                ref, token = _form_fields(answer.text)
                await _review(h, ip, pupil, ref, token, "\n".join(p for p in ps if encode(p) in batch))
    for n, login in enumerate(u for u in hostile_users if u[0] not in used):
        target = FLAGGED + "who-" + str(n)
        answer = await _get(h, "127.0.0.8", target, login)
        h.block_pages.append(Page(f"block-user-{n}", answer.text, [target, login[0]]))
    # one payload per reason, for the ones a terminal would act on, a few clients at a time
    singles = [p for p in ps if any(ord(c) < 32 or 0x200b <= ord(c) <= 0x206f for c in p)] + [ps[0]]
    for k in range(0, len(singles), REVIEWS_PER_CLIENT):
        ip = f"127.0.0.{client}"
        client += 1
        answer = await _get(h, ip, FLAGGED + "review-me", pupil)
        ref, token = _form_fields(answer.text)
        for reason in singles[k:k + REVIEWS_PER_CLIENT]:
            await _review(h, ip, pupil, ref, token, reason)
    # flagged searches, one payload each, from one laptop
    ip = f"127.0.0.{client}"
    for p in ps:
        term = f"suicide {p}"
        answer = await _get(h, ip, "http://www.google.com/search?q=" + corpus.for_search(term), pupil)
        assert answer.status == 200, (answer.status, answer.text[:200])
        h.terms_sent.append(term)
    # host names: IDN, percent-encoded and raw labels; a hostile Host header with an absolute target
    for host in ("xn--mgbh0fb.pornhub.com", "%3Cscript%3E.pornhub.com", "<svg/onload=alert('SGXSS')>.pornhub.com",
                 "pornhub.com\u202e.x", "xn--gnp-4q0a.pornhub.com"):
        answer = await _get(h, "127.0.0.9", f"http://{host}/", pupil, [("Host", host)])
        h.other_pages.append(Page(f"host {host}", answer.text, []))
    for p in ps[:12]:
        answer = await _get(h, "127.0.0.9", FLAGGED, pupil, [("Host", corpus.for_header(p))])
        h.other_pages.append(Page("host header", answer.text, []))
    # inside an intercepted HTTPS tunnel the Host header is the browser's to write
    tunnel = h.school.client("127.0.0.7", auth=pupil)
    for p in [p for p in ps if corpus.for_login(p) and p.isascii()][:12]:
        response = await tunnel.get("https://pornhub.com/tls", headers={"Host": p})
        assert response.status_code == 403     # decided on the tunnel's host, whatever the header says
        h.other_pages.append(Page("host header in TLS", response.text, []))


async def collect(h: Hostile, work: Path) -> None:
    """What the payloads reached: stored reviews, `schoolgate requests list`, the weekly report, the emails."""
    school = h.school
    await school.runtime.writer.flush()
    with closing(sqlite3.connect(school.ctx.db_path)) as db:
        h.stored_reviews = db.execute("SELECT reason_text, user_name FROM review_requests ORDER BY id").fetchall()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    args = ["--config", str(school.ctx.config_path), "--data", str(school.ctx.data_dir)]
    proc = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "proxy.cli", "requests", "list", *args],
                                   capture_output=True, env=env, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    h.cli_output = proc.stdout.decode("utf-8", "replace")
    # alert emails: the first at once, the rest grouped once the ten-minute window has passed
    alerts = school.runtime.alerts
    await alerts.run_once()
    school.clock.now += dt.timedelta(minutes=11)
    await alerts.run_once()
    school.clock.now += dt.timedelta(minutes=11)
    await alerts.run_once()
    for i, got in enumerate(h.smtp.received):
        h.emails.append(Page(f"email-{i}", got.html, []))
    h.emails_page = Page("emails", all_bodies([e.html for e in h.emails], "alert emails"), [])
    h.blocks_page = Page("block pages", all_bodies([p.html for p in h.block_pages if not p.in_browser],
                                                   "block pages"), [])
    period = parse_week("2026-W48", LONDON)
    made = await asyncio.to_thread(make_weekly, school.ctx.db_path, school.ctx.settings, period,
                                   now=dt.datetime(2026, 11, 30, 7, 0, tzinfo=LONDON), out_dir=work / "reports",
                                   index_path=school.ctx.index_path)
    h.report = Page("weekly report", made.html, [])
    for page in h.browser_pages():
        page.path = work / f"{re.sub(r'[^a-z0-9-]', '_', page.name)}.html"
        page.path.write_text(page.html, encoding="utf-8")


async def stop(h: Hostile) -> None:
    await h.school.close()
    await h.smtp.stop()
