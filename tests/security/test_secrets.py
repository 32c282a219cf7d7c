"""Secrets stay secret: no password or proxy credential in any log or row; private files stay private.

- Good and bad proxy logins (plain HTTP and CONNECT) through the real proxy:
  the passwords, the `Proxy-Authorization` values and "user:password" are in
  none of the captured logs (every logger, DEBUG), the database file with its
  WAL, any table's rows, the visit rows, or the upstream's requests.
- Under a careless umask (000): after `schoolgate init`, a run of the proxy,
  a weekly report and a subject access export, the CA key, the database (and
  its WAL), the CSRF secret, reports and exports are the service user's only.
- The config loader refuses a secret wherever one could be written: an
  unknown password/secret/token key in any table, credentials or a token in
  a category source URL, a password in the LDAP spec (even when unused), a
  password written where the name of its environment variable belongs.
"""
from __future__ import annotations

import base64
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import pytest
from passlib.apache import HtpasswdFile

from config.errors import ConfigError
from config.loader import DEFAULT_CONFIG, load_settings
from proxy.db import open_db
from proxy.records import read_visits
from tests.security import rawhttp
from tests.support.school import start_school, write_school

REPO = Path(__file__).resolve().parents[2]
LOGINS = {"teacher": "Chalk&Board-42x", "y3.pupil": "Sunflower-77q", "head": "Quill%Ink-0099"}
WRONG = ["Wrong-Guess-1234", "Chalk&Board-43x"]


@contextmanager
def careless_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _private(path: Path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def _secrets() -> list[str]:
    out = []
    for user, password in [*LOGINS.items(), ("teacher", WRONG[0]), ("nobody", WRONG[1])]:
        out += [password, f"{user}:{password}", rawhttp.basic(user, password),
                base64.b64encode(f"{user}:{password}".encode()).decode()]
    return out


async def test_no_password_or_proxy_credential_is_logged_or_stored(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ht = HtpasswdFile(str(tmp_path / "users.htpasswd"), new=True)
    for user, password in LOGINS.items():
        ht.set_password(user, password)
    ht.save()
    with careless_umask():
        school = await start_school(tmp_path, replace={
            'auth = "none"': f'auth = "htpasswd"\nhtpasswd = "{tmp_path / "users.htpasswd"}"'})
    try:
        proxy = school.service.address
        assert proxy is not None
        for user, password in [*LOGINS.items(), ("teacher", WRONG[0]), ("nobody", WRONG[1])]:
            for url in ("http://example.org/page.html", "http://pornhub.com/x", "http://www.google.com/search?q=kill+yourself"):
                host = url.split("/")[2]
                await rawhttp.send(proxy, "127.0.2.61", "GET", url, [
                    ("Host", host), ("Proxy-Authorization", rawhttp.basic(user, password))])
            # and over HTTPS: the credentials travel on the CONNECT
            client = school.client("127.0.2.62", auth=(user, password))
            try:
                await client.get("https://example.org/secure.html")
            except Exception:  # a refused login ends the tunnel
                pass
        await school.runtime.writer.flush()
        await school.runtime.alerts.run_once()
        conn = await open_db(school.ctx.db_path)
        try:
            visits = [v.record for v in await read_visits(conn, 0, 2**40)]
        finally:
            await conn.close()
        assert {v.user for v in visits} >= {"teacher", "y3.pupil", "head"}     # the good logins were used
        upstream = repr(school.origin.seen)
        assert "/secure.html" in upstream and "/page.html" in upstream
        files = {p.name: p.read_bytes() for p in school.ctx.data_dir.glob("schoolgate.db*")}
        assert "schoolgate.db-wal" in files
        with closing(sqlite3.connect(school.ctx.db_path)) as db:
            tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            rows = repr([db.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables])
        for name in files:
            assert _private(school.ctx.data_dir / name), name
        assert _private(school.ctx.data_dir) and _private(school.ctx.data_dir / "secret.key")
        assert _private(school.ctx.ca_dir / "mitmproxy-ca.pem")
    finally:
        await school.close()
    places = {"logs": caplog.text, "rows": rows, "visits": repr(visits), "upstream": upstream,
              **{name: data.decode("latin-1") for name, data in files.items()}}
    assert "Proxy-Authorization" not in upstream and "proxy-authorization" not in upstream
    leaks = [(secret, where) for secret in _secrets() for where, text in places.items() if secret in text]
    assert leaks == []


def _cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`schoolgate ...` as its own process, started with umask 000."""
    code = "import os, sys; os.umask(0); from proxy.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120)


def test_private_files_stay_private_under_a_careless_umask(tmp_path: Path) -> None:
    ctx = write_school(tmp_path)
    args = ["--config", str(ctx.config_path), "--data", str(ctx.data_dir)]
    done = _cli(tmp_path, "init", *args)
    assert done.returncode == 0, done.stderr
    data = ctx.data_dir
    ca_key = data / "ca" / "mitmproxy-ca.pem"
    for path in (data, data / "ca", ca_key, data / "schoolgate.db"):
        assert path.exists() and _private(path), (path, oct(path.stat().st_mode))
    for path in data.glob("schoolgate.db-*"):
        assert _private(path), path
    assert "PRIVATE KEY" in ca_key.read_text()
    done = _cli(tmp_path, "report", "weekly", "--week", "2026-W48", *args)
    assert done.returncode == 0, done.stderr
    done = _cli(tmp_path, "export-user", "y3.pupil", *args)
    assert done.returncode == 0, done.stderr
    made = [p for p in (data / "reports").rglob("*")] + [p for p in (data / "exports").rglob("*")]
    assert any(p.suffix == ".html" for p in made) and any("export" in str(p) for p in made)
    exposed = [(str(p), oct(stat.S_IMODE(p.stat().st_mode))) for p in made if not _private(p)]
    assert exposed == []
    assert _private(data / "reports") and _private(data / "exports")


SECRET_CASES = [
    # (old text, new text, key the error names, words in the message)
    ('username = ""', 'username = ""\nsmtp_password = "hunter2"', "smtp.smtp_password", "secrets never go"),
    ('listen_port = 8080', 'listen_port = 8080\nldap_password = "hunter2"', "proxy.ldap_password",
     "secrets never go"),
    ('listen_port = 8080', 'listen_port = 8080\nbind_secret = "hunter2"', "proxy.bind_secret", "secrets never go"),
    ('name = "Demo Primary School"', 'name = "Demo Primary School"\napi_token = "abc123"', "school.api_token",
     "secrets never go"),
    ('password_env = "SCHOOLGATE_SMTP_PASSWORD"', 'password_env = "hunter2!Secret"', "smtp.password_env",
     "name of an environment variable"),
    ('listen_port = 8080', 'listen_port = 8080\nldap_password_env = "s3cret pass"', "proxy.ldap_password_env",
     "name of an environment variable"),
    ('auth = "none"', 'auth = "none"\nldap = "ldap:dc1.school.local:CN=svc:hunter2:OU=Users"', "proxy.ldap",
     "ldap[s]:SERVER"),
    ('url = "https://dsi.ut-capitole.fr/blacklists/download/blacklists.tar.gz"',
     'url = "https://feeds:hunter2@lists.example/blacklists.tar.gz"', "categories.sources[0].url",
     "a user name and password in a URL"),
    ('url = "https://dsi.ut-capitole.fr/blacklists/download/blacklists.tar.gz"',
     'url = "https://lists.example/feed.txt?api_key=abc123"', "categories.sources[0].url", "api_key parameter"),
]


@pytest.mark.parametrize("old,new,key,words", SECRET_CASES, ids=[c[2] for c in SECRET_CASES])
def test_the_loader_refuses_a_secret_in_the_main_config(tmp_path: Path, old: str, new: str, key: str,
                                                        words: str) -> None:
    text = DEFAULT_CONFIG.read_text()
    assert old in text
    path = tmp_path / "school.toml"
    path.write_text(text.replace(old, new, 1))
    for name in ("users.csv", "devices.csv"):
        (tmp_path / name).write_text((DEFAULT_CONFIG.parent / name).read_text())
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    issues = [i for i in err.value.issues if i.key == key]
    assert issues and words in issues[0].message, [(i.key, i.message) for i in err.value.issues]
    assert issues[0].line is not None
    assert all("hunter2" not in i.message for i in err.value.issues), "the error repeats the secret"


def test_the_example_config_names_its_secrets_only_by_where_they_live() -> None:
    s = load_settings(DEFAULT_CONFIG)
    assert s.smtp.password_env == "SCHOOLGATE_SMTP_PASSWORD" and s.proxy.ldap_password_env == "SCHOOLGATE_LDAP_PASSWORD"
