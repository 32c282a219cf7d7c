"""The demo school on loopback: a real Schoolgate proxy in process, for tests of whole behaviour.

`config/example.toml` is rewritten so that its networks live on 127.0.x.y
(10.20.N.0/24 becomes 127.0.N.0/24): an httpx client bound to, say,
127.0.1.5 is a KS1 iPad, 127.0.70.5 a pupil-owned device.  Upstream traffic
is routed to a local origin server, so nothing leaves the machine.  The
category index is compiled by the real code from the built-in lists plus
small local lists named in the config, the way technical support would.
"""
from __future__ import annotations

import datetime as dt
import shutil
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import httpcore
import httpx
from mitmproxy.proxy import server_hooks

from config.loader import DEFAULT_CONFIG
from proxy.context import Context
from proxy.runtime import Runtime
from proxy.service import Service
from tests.support.origin import Origin

LONDON = ZoneInfo("Europe/London")
MONDAY_LESSON = dt.datetime(2026, 11, 23, 10, 0, tzinfo=LONDON)   # in school hours

TEST_LISTS: dict[str, list[str]] = {
    "gambling": ["bet365.com", "paddypower.com"],
    "games": ["miniclip.com", "coolmath-games.com"],
    "adult": ["pornhub.com", "adult-example.test"],
    "social_networks": ["facebook.com", "tiktok.com"],
    "shopping": ["amazon.co.uk"],
    "vpn": ["nordvpn.com"],
    "iwf": ["iwf-test-entry.test"],
    "child": ["cbeebies.com", "bbc.co.uk"],
}


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now.astimezone(dt.UTC)


class RouteToOrigin:
    """Test-only addon, last in the chain: open every upstream connection to the local origin."""

    def __init__(self, origin: Origin) -> None:
        self.origin = origin

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        _host, port = data.server.address or ("", 0)
        data.server.address = ("127.0.0.1", self.origin.tls_port if port == 443 else self.origin.port)


def write_school(tmp: Path, *, extra_lists: Mapping[str, list[str]] | None = None,
                 replace: Mapping[str, str] | None = None) -> Context:
    """A copy of the demo school's config on loopback networks, under `tmp`."""
    cfg_dir = tmp / "config"
    cfg_dir.mkdir(parents=True, exist_ok=True)
    lists_dir = tmp / "lists"
    lists_dir.mkdir(exist_ok=True)
    text = DEFAULT_CONFIG.read_text().replace('"10.20.', '"127.0.')
    sources = []
    for category, names in {**TEST_LISTS, **(extra_lists or {})}.items():
        (lists_dir / f"{category}.txt").write_text("\n".join(names) + "\n")
        illegal = "true" if category in ("iwf", "ctiru") else "false"
        sources.append(f'[[categories.sources]]\nname = "test-{category}"\npath = "../lists/{category}.txt"\n'
                       f'format = "domains"\ncategory = "{category}"\nillegal = {illegal}\n')
    start = text.index("[[categories.sources]]")
    end = text.index("[storage]")
    text = text[:start] + "\n".join(sources) + "\n" + text[end:]
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    (cfg_dir / "school.toml").write_text(text)
    for name in ("users.csv", "devices.csv"):
        content = (DEFAULT_CONFIG.parent / name).read_text().replace("10.20.", "127.0.")
        if name == "devices.csv":   # loaned laptops of the pupils without consent / banned
            content += "loan-laptop-y5,,127.0.4.25,loaned,y5.noconsent\nloan-laptop-y6,,127.0.4.26,loaned,y6.banned\n"
        (cfg_dir / name).write_text(content)
    return Context(config_path=cfg_dir / "school.toml", data_dir=tmp / "var")


@dataclass
class School:
    ctx: Context
    service: Service
    origin: Origin
    clock: Clock
    proxy_url: str = ""
    clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, ip: str = "127.0.0.1", auth: tuple[str, str] | None = None,
               **kwargs: object) -> httpx.AsyncClient:
        """An HTTP client using the proxy from source address `ip` (logged in with `auth`)."""
        verify = ssl.create_default_context(cafile=str(self.ctx.ca_cert))
        transport = proxied_transport(self.proxy_url, ip, verify, auth)
        client = httpx.AsyncClient(transport=transport, timeout=10, **kwargs)  # type: ignore[arg-type]
        self.clients.append(client)
        return client

    @property
    def runtime(self) -> Runtime:
        return self.service.runtime

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        await self.service.stop()
        await self.origin.stop()


def proxied_transport(proxy_url: str, local_address: str, verify: ssl.SSLContext | bool,
                      auth: tuple[str, str] | None = None) -> httpx.AsyncHTTPTransport:
    """An httpx transport through `proxy_url` from source address `local_address`.

    httpx drops `local_address` when a proxy is given, so the pool is built
    with httpcore directly (the same class httpx would use).
    """
    if verify is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = verify if isinstance(verify, ssl.SSLContext) else ssl.create_default_context()
    transport = httpx.AsyncHTTPTransport(verify=context)
    transport._pool = httpcore.AsyncHTTPProxy(proxy_url=httpcore.URL(proxy_url), ssl_context=context,
                                              proxy_auth=auth, network_backend=BoundBackend(local_address))
    return transport


class BoundBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend with every TCP connection made from one source address."""

    def __init__(self, local_address: str) -> None:
        self.inner = httpcore.AnyIOBackend()
        self.local_address = local_address

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: object = None) -> httpcore.AsyncNetworkStream:
        return await self.inner.connect_tcp(host, port, timeout, self.local_address,
                                            socket_options)  # type: ignore[arg-type]

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def origin_tls_context(tmp: Path) -> ssl.SSLContext:
    """A server TLS context for the origin (a throwaway CA from mitmproxy's own helpers)."""
    from mitmproxy.certs import CertStore

    store_dir = tmp / "origin-ca"
    CertStore.create_store(store_dir, "origin", 2048)
    store = CertStore.from_store(store_dir, "origin", 2048)
    entry = store.get_cert("127.0.0.1", [])
    cert_file = store_dir / "leaf.pem"
    key_file = store_dir / "leaf.key"
    cert_file.write_bytes(entry.cert.to_pem())
    from cryptography.hazmat.primitives import serialization

    key_file.write_bytes(entry.privatekey.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


async def start_school(tmp: Path, *, at: dt.datetime = MONDAY_LESSON, ban: bool = True,
                       **write_kwargs: object) -> School:
    """Init the demo school under `tmp` (register, index, CA) and start its proxy on a free port."""
    from proxy.cmd_service import _import_register, build_index
    from proxy.ca import ensure_ca

    ctx = write_school(tmp, **write_kwargs)  # type: ignore[arg-type]
    ctx.ensure_data_dir()
    ensure_ca(ctx.ca_dir, ctx.settings.school.name)
    assert await _import_register(ctx) == 0
    if ban:
        from proxy import register
        from proxy.db import open_db

        conn = await open_db(ctx.db_path)
        await register.ban(conn, "y6.banned", None, by="test", reason="misuse incident")
        await conn.close()
    import io

    log = io.StringIO()
    assert build_index(ctx.settings, ctx.index_path, out=log) == 0, log.getvalue()
    origin = Origin()
    await origin.start(origin_tls_context(tmp))
    clock = Clock(at)
    runtime = Runtime(ctx, clock=clock, refresh_every=0.2)
    service = Service(ctx, runtime=runtime, listen_port=0, extra_addons=[RouteToOrigin(origin)])
    await service.start()
    assert service.master is not None
    service.master.options.update(ssl_insecure=True)
    host, port = service.address or ("", 0)
    return School(ctx, service, origin, clock, proxy_url=f"http://{host}:{port}")


def copy_data(src: Path, dst: Path) -> None:
    shutil.copytree(src, dst)
