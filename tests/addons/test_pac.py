"""The PAC / WPAD file, fetched straight from the real proxy's port the way school devices fetch it.

A device given `http://10.20.0.1:8080/proxy.pac` (MDM, DHCP option 252) or
finding `http://wpad.<domain>/wpad.dat` by DNS (through a port-80 redirect)
sends an ordinary, non-proxied request to the proxy's port, with whatever
Host header its URL had.  The test proxy listens on a random port, so a PAC
naming the config's 8080 would fail here.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from passlib.apache import HtpasswdFile

from proxy.pac import CONTENT_TYPE
from tests.support.school import School, start_school

INTERNAL = '["127.0.0.0/24", "192.168.77.0/24"]'   # the demo's 10.20.0.0/24 on loopback, plus one more
HOSTS = ("{proxy}", "wpad.school.test", "wpad", "schoolgate.local", "gateway.school.test:{port}", "www.example.com")


@pytest.fixture
async def school(tmp_path: Path) -> AsyncIterator[School]:
    s = await start_school(tmp_path, replace={
        'internal_networks = ["127.0.0.0/24"]': f"internal_networks = {INTERNAL}",
        'cidr = "127.0.0.0/8"': 'cidr = "127.0.0.0/16"'})   # 127.1.0.1 stands for a machine outside the school
    try:
        yield s
    finally:
        await s.close()


def port_of(school: School) -> int:
    return int(school.proxy_url.rsplit(":", 1)[1])


async def direct_get(school: School, path: str, host: str, source: str = "127.0.2.5",
                     **headers: str) -> httpx.Response:
    """A plain (origin-form) request to the proxy's own port from `source`, with the given Host header."""
    transport = httpx.AsyncHTTPTransport(local_address=source)
    async with httpx.AsyncClient(transport=transport, timeout=10) as client:
        return await client.get(f"{school.proxy_url}{path}", headers={"Host": host, **headers})


async def test_pac_and_wpad_answer_direct_requests_whatever_the_host(school: School) -> None:
    port = port_of(school)
    assert port != 8080
    for path in ("/proxy.pac", "/wpad.dat"):
        for template in HOSTS:
            host = template.format(proxy=f"127.0.0.1:{port}", port=port)
            r = await direct_get(school, path, host)
            assert r.status_code == 200, (path, host, r.text[:200])
            assert r.headers["content-type"] == CONTENT_TYPE, (path, host)
            assert "function FindProxyForURL(url, host)" in r.text
            assert f'return "PROXY 127.0.0.1:{port}";' in r.text, (path, host, r.text)
            assert "8080" not in r.text     # the port it listens on, not the config's
    assert school.origin.seen == []         # answered by Schoolgate itself, nothing went upstream


async def test_pac_sends_internal_networks_direct_except_for_internet_only_devices(school: School) -> None:
    school_laptop = (await direct_get(school, "/proxy.pac", "wpad.school.test", source="127.0.2.5")).text
    assert 'isInNet(host, "192.168.77.0", "255.255.255.0")) return "DIRECT"' in school_laptop
    assert 'isInNet(host, "127.0.0.0", "255.255.255.0")) return "DIRECT"' in school_laptop
    visitor = (await direct_get(school, "/proxy.pac", "wpad.school.test", source="127.0.60.5")).text
    assert "isInNet" not in visitor and f'"PROXY 127.0.0.1:{port_of(school)}"' in visitor


async def test_pac_is_served_without_proxy_login(tmp_path: Path) -> None:
    ht = HtpasswdFile(str(tmp_path / "users.htpasswd"), new=True)
    ht.set_password("teacher", "Chalk&Board-42")
    ht.save()
    school = await start_school(tmp_path, replace={
        'auth = "none"': f'auth = "htpasswd"\nhtpasswd = "{tmp_path / "users.htpasswd"}"'})
    try:
        assert (await school.client("127.0.2.5").get("http://example.org/")).status_code == 407
        r = await direct_get(school, "/wpad.dat", "wpad.school.test")    # an OS fetching WPAD has no credentials
        assert r.status_code == 200 and r.headers["content-type"] == CONTENT_TYPE
        r = await direct_get(school, "/ca.pem", f"127.0.0.1:{port_of(school)}")
        assert r.status_code == 200 and r.content == school.ctx.ca_cert.read_bytes()
        r = await direct_get(school, "/anything-else", f"127.0.0.1:{port_of(school)}")
        assert r.status_code == 407                                       # only the public files skip the login
        assert school.origin.seen == []
    finally:
        await school.close()


async def test_ca_download_only_when_addressed_to_schoolgate(school: School) -> None:
    cert = school.ctx.ca_cert.read_bytes()
    for host in (f"127.0.0.1:{port_of(school)}", "127.0.0.1", "schoolgate.local", f"gateway.school.test:{port_of(school)}"):
        r = await direct_get(school, "/ca.pem", host)
        assert r.status_code == 200 and r.content == cert, host
        assert r.headers["content-type"] == "application/x-x509-ca-cert"
    # another site's /ca.pem, through the proxy, is that site's (filtered as usual), not the school's CA
    r = await school.client("127.0.2.5").get("http://www.example.com/ca.pem")
    assert r.status_code == 200 and json.loads(r.text)["host"] == "www.example.com"
    r = await school.client("127.0.2.5").get("http://www.bet365.com/ca.pem")
    assert r.status_code == 403 and r.headers["x-schoolgate-rule"]


async def test_portal_is_no_way_round_the_filter(school: School) -> None:
    # a direct request for anything else is an ordinary request to its Host: filtered like any other
    r = await direct_get(school, "/", "www.bet365.com")
    assert r.status_code == 403 and r.headers["x-schoolgate-rule"]
    # clients outside the school's networks get nothing, not even the PAC
    with pytest.raises(httpx.HTTPError):
        await direct_get(school, "/proxy.pac", "wpad.school.test", source="127.1.0.1")
    # a POST to a PAC path is not the PAC
    transport = httpx.AsyncHTTPTransport(local_address="127.0.2.5")
    async with httpx.AsyncClient(transport=transport, timeout=10) as client:
        r = await client.post(f"{school.proxy_url}/proxy.pac", headers={"Host": "www.bet365.com"}, content=b"x")
    assert r.status_code == 403


NODE_HARNESS = r"""
const pac = require("fs").readFileSync(process.argv[2], "utf8");
function ip(s) { const p = String(s).split("."); if (p.length != 4 || p.some(x => !/^\d+$/.test(x))) return null;
  return ((+p[0] << 24) >>> 0) + (+p[1] << 16) + (+p[2] << 8) + (+p[3]); }
function dnsResolve(h) { return ip(h) === null ? null : h; }
function isInNet(h, pat, mask) { const a = ip(dnsResolve(h)); if (a === null) return false;
  return ((a & ip(mask)) >>> 0) === ((ip(pat) & ip(mask)) >>> 0); }
function shExpMatch(s, p) { return new RegExp("^" + p.replace(/[.+^${}()|[\]\\]/g, "\\$&")
  .replace(/\*/g, ".*").replace(/\?/g, ".") + "$").test(s); }
function isPlainHostName(h) { return h.indexOf(".") < 0; }
function dnsDomainIs(h, d) { return h.endsWith(d); }
eval(pac);
const out = {};
for (const url of process.argv.slice(3)) out[url] = FindProxyForURL(url, new URL(url).hostname);
console.log(JSON.stringify(out));
"""


def evaluate_pac(tmp_path: Path, pac: str, urls: list[str]) -> dict[str, str]:
    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("node is not installed: FindProxyForURL not evaluated (the PAC text is checked above)")
    (tmp_path / "pac.js").write_text(pac)
    (tmp_path / "harness.js").write_text(NODE_HARNESS)
    done = subprocess.run([node, str(tmp_path / "harness.js"), str(tmp_path / "pac.js"), *urls],
                          capture_output=True, text=True, timeout=60, check=True)
    return json.loads(done.stdout)


async def test_find_proxy_for_url_evaluated(school: School, tmp_path: Path) -> None:
    proxy = f"PROXY 127.0.0.1:{port_of(school)}"
    urls = ["http://www.example.com/", "https://www.bbc.co.uk/news", "http://192.168.77.10/intranet",
            "http://127.0.0.9/", "http://localhost:3000/", "http://schoolgate.local/review", "http://SchoolGate.Local/",
            "http://192.168.78.1/"]
    laptop = evaluate_pac(tmp_path, (await direct_get(school, "/wpad.dat", "wpad")).text, urls)
    assert laptop == {
        "http://www.example.com/": proxy, "https://www.bbc.co.uk/news": proxy,
        "http://192.168.77.10/intranet": "DIRECT", "http://127.0.0.9/": "DIRECT", "http://localhost:3000/": "DIRECT",
        "http://schoolgate.local/review": proxy, "http://SchoolGate.Local/": proxy, "http://192.168.78.1/": proxy}
    visitor = evaluate_pac(tmp_path, (await direct_get(school, "/proxy.pac", "wpad", source="127.0.60.5")).text, urls)
    assert visitor["http://192.168.77.10/intranet"] == proxy and visitor["http://www.example.com/"] == proxy
