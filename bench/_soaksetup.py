"""Setting up `bench.soak`: the demo school on loopback with several client networks, its data dir,
the origin (nginx: plain HTTP and TLS), a mail sink for the alert emails, and the check that
nothing the load sends can leave the machine.

Client addresses (all on loopback; the narrowest network wins):
    ks2   127.0.2.10   inside the demo's 127.0.0.0/8 "this machine" network (a KS2 laptop)
    ks1   127.0.1.10   127.0.1.0/24, a KS1 iPad (walled garden)
    staff 127.0.3.10   127.0.3.0/24, a shared staff machine (full access, intercepted)
    guest 127.0.60.10  127.0.60.0/24, visitor-owned (internet only, TLS passed through)
"""
from __future__ import annotations

import asyncio
import collections
import datetime as dt
import email
import email.policy
import io
import ipaddress
import logging
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from bench._peers import Peer, free_port, http_get_via, wait_ready

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[1]
CLIENTS = {"ks2": "127.0.2.10", "ks1": "127.0.1.10", "staff": "127.0.3.10", "guest": "127.0.60.10"}
NETWORKS = """
[[networks]]
name = "Soak: KS1 iPads"
cidr = "127.0.1.0/24"
device_class = "school_shared"
group = "ks1"

[[networks]]
name = "Soak: staff machines"
cidr = "127.0.3.0/24"
device_class = "school_shared"
group = "staff"

[[networks]]
name = "Soak: visitor devices"
cidr = "127.0.60.0/24"
device_class = "visitor_owned"
access = "internet_only"
tls = "passthrough"
group = "guest"

"""


def _section(text: str, name: str, body: str) -> str:
    """`text` with the table `[name]` (up to the next table) replaced by `body`."""
    start = text.index(f"\n[{name}]\n") + 1
    end = text.find("\n[", start + 1)
    return text[:start] + body + ("\n" + text[end + 1:] if end >= 0 else "")


def soak_config(workdir: Path, *, proxy_port: int, dns_port: int, upstream_port: int, metrics_port: int,
                smtp_port: int) -> Path:
    """The demo school's config with loopback ports, DNS and metrics on, no downloadable list source."""
    from config.loader import DEFAULT_CONFIG

    text = DEFAULT_CONFIG.read_text()
    text = re.sub(r"(?ms)^\[\[categories\.sources\]\]\n.*?(?=^\[)", "", text)   # nothing to download
    text = text.replace("\n[register]\n", "\n" + NETWORKS + "[register]\n", 1)
    proxy_at = text.index("\n[proxy]\n")
    text = text[:proxy_at] + re.sub(r"(?m)^listen_port = \d+$", f"listen_port = {proxy_port}", text[proxy_at:], count=1)
    text = _section(text, "dns", f'[dns]\nenabled = true\nlisten_host = "127.0.0.1"\nlisten_port = {dns_port}\n'
                                 f'upstreams = ["127.0.0.1:{upstream_port}"]\nblock_answer = "blockpage"\n')
    text = _section(text, "metrics", f'[metrics]\nenabled = true\nlisten_host = "127.0.0.1"\nport = {metrics_port}\n')
    text = _section(text, "smtp", f'[smtp]\nhost = "127.0.0.1"\nport = {smtp_port}\nsecurity = "none"\n'
                                  'username = ""\npassword_env = "SCHOOLGATE_SMTP_PASSWORD"\n')
    cfg = workdir / "config"
    cfg.mkdir(parents=True, exist_ok=True)
    for name in ("users.csv", "devices.csv"):
        shutil.copy(DEFAULT_CONFIG.with_name(name), cfg / name)
    (cfg / "school.toml").write_text(text)
    return cfg / "school.toml"


def context(config: Path, data: Path) -> Any:
    from proxy.context import Context

    ctx = Context()
    ctx.config_path, ctx.data_dir = config, data
    return ctx


async def build_data_dir(tree: Path, config: Path, data: Path) -> None:
    """What `schoolgate init --offline` and `categories update --from TREE` make, in this process."""
    from categories.commands import update
    from proxy.ca import ensure_ca
    from proxy.cmd_service import build_index
    from proxy.db import open_db
    from proxy.registercsv import import_devices_csv, import_users_csv

    ctx = context(config, data)
    ctx.ensure_data_dir()
    ensure_ca(ctx.ca_dir, ctx.settings.school.name)
    conn = await open_db(ctx.db_path)
    try:
        reg = ctx.settings.register
        await import_users_csv(conn, reg.users_csv, by="bench.soak", known_groups=set(ctx.settings.groups))
        await import_devices_csv(conn, reg.devices_csv, by="bench.soak")
    finally:
        await conn.close()
    out = io.StringIO()
    if build_index(ctx.settings, ctx.index_path, offline=True, out=out) or \
            update(ctx.settings.categories, ctx.index_path, str(tree), out=out):
        raise RuntimeError(f"could not build the index from {tree}: {out.getvalue()[-500:]}")


async def grant_overrides(config: Path, data: Path, minutes: int) -> None:
    """A teacher's override of 127.0.0.1 for KS1 and KS2 (bare-IP URLs are blocked for pupils)."""
    from proxy.db import open_db
    from proxy.overrides import add_override

    ctx = context(config, data)
    conn = await open_db(ctx.db_path)
    try:
        for group in ("ks1", "ks2"):
            await add_override(conn, ctx.settings, group=group, minutes=minutes, by="bench.soak", domain="127.0.0.1",
                               reason="soak: let the load through to the local nginx", now=dt.datetime.now(dt.UTC))
    finally:
        await conn.close()


async def check_mix(config: Path, data: Path, items: Sequence[Any]) -> None:
    """Refuse to run unless every item is decided as expected and nothing allowed leaves loopback.

    An allowed request is forwarded upstream, so only 127.0.0.1 may be allowed; an internet-only
    device's named request is resolved by the proxy (getaddrinfo), so those may only use literals.
    """
    from proxy.db import open_db
    from proxy.engine import Engine
    from proxy.listentries import load_local_lists
    from proxy.overrides import load_active_overrides
    from proxy.register import load_snapshot

    ctx = context(config, data)
    at = dt.datetime.now(dt.UTC)
    engine = Engine(ctx.settings, ctx.index_path)
    conn = await open_db(ctx.db_path)
    try:
        engine.register = await load_snapshot(conn)
        engine.overrides = tuple(await load_active_overrides(conn, at))
        engine.local = await load_local_lists(conn)
    finally:
        await conn.close()
    for item in items:
        who = engine.identify(CLIENTS[item.group], None, at)
        port = int(item.url.rsplit(":", 1)[1]) if item.connect else None
        ev = engine.evaluate(who, item.url, method="CONNECT" if item.connect else "GET", at=at, connect_port=port)
        d = ev.decision
        problems = []
        if d.group != item.group or d.action.value != item.expect:
            problems.append(f"expected {item.expect} for {item.group}, got {d.action.value} for {d.group} ({d.rule})")
        if d.action.value == "allow" and ev.host != "127.0.0.1":
            problems.append(f"allowed to {ev.host}: it would leave the machine")
        if who.access == "internet_only" and ev.host_kind == "name":
            problems.append("a named request from an internet-only device is resolved by the proxy")
        if item.flagged and not (d.flagged or ev.watch_phrase):
            problems.append(f"not flagged ({d.rule})")
        if problems:
            raise RuntimeError(f"soak mix item {item.name} ({item.url}): " + "; ".join(problems))


def self_signed(workdir: Path) -> tuple[Path, Path]:
    """A throwaway certificate for the TLS origin (CN localhost, 127.0.0.1), valid for two days."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = workdir / "origin.crt", workdir / "origin.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def start_origin(workdir: Path, body: bytes) -> tuple[Peer, int]:
    """nginx with `body` at /file, over HTTP (the peer's port) and over TLS (the returned port)."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise RuntimeError("nginx is not installed")
    www = workdir / "www"
    www.mkdir(parents=True, exist_ok=True)
    (www / "file").write_bytes(body)
    for d in (workdir, www):
        os.chmod(d, 0o755)   # the worker runs as an unprivileged user
    cert, key = self_signed(workdir)
    port, tls_port = free_port(socket.SOCK_STREAM), free_port(socket.SOCK_STREAM)
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"daemon off;\nworker_processes 1;\npid {workdir}/nginx.pid;\nerror_log {workdir}/error.log warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n  access_log off;\n  default_type text/html;\n  keepalive_requests 1000000;\n"
        f"  server {{\n    listen 127.0.0.1:{port};\n    listen 127.0.0.1:{tls_port} ssl;\n"
        f"    ssl_certificate {cert};\n    ssl_certificate_key {key};\n    root {www};\n  }}\n}}\n")
    started = time.perf_counter()
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(workdir)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    peer = Peer("nginx", proc, 0.0, port)
    url = f"http://127.0.0.1:{port}/file"
    return wait_ready(peer, lambda: http_get_via(port, url, f"127.0.0.1:{port}") == (200, body), 10, started), tls_port


class MailSink:
    """An SMTP server on 127.0.0.1 (aiosmtpd, in this event loop) that counts the alert emails."""

    def __init__(self) -> None:
        self.messages = 0
        self.subjects: collections.Counter[str] = collections.Counter()
        self._server: asyncio.Server | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.messages += 1
        raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        subject = email.message_from_bytes(raw, policy=email.policy.default)["Subject"]
        self.subjects[f"{subject} -> {len(envelope.rcpt_tos)} recipients"] += 1
        return "250 OK"

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: SMTP(self, hostname="soak.localhost"), "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
