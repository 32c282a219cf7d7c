"""The proxy auto-config (PAC) file school devices fetch as `/proxy.pac` or, by WPAD, `/wpad.dat`.

One pure function; `addons.portal` serves it on the proxy's own port.  The
file names the address and port the client actually reached the proxy on
(not the config's, which a `--port` override or a wildcard `listen_host`
makes wrong), sends Schoolgate's own pages (`block_page_name`) through the
proxy, the school's internal networks and the machine itself direct, and
everything else through the proxy.  Devices that may use the internet only
(staff- and visitor-owned) get no direct route to the internal networks:
the proxy refuses those requests for them, and a PAC must not hand them a
way round it.  In transparent mode the firewall redirects the traffic
anyway, so the file says DIRECT for everything.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable

CONTENT_TYPE = "application/x-ns-proxy-autoconfig"
PATHS = frozenset({"/proxy.pac", "/wpad.dat"})


def plain_address(host: str) -> str:
    """An address as written in a URL's host: IPv4-mapped IPv6 unwrapped, no brackets or zone; names unchanged."""
    try:
        addr = ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    return str(addr)


def proxy_hostport(host: str, port: int) -> str:
    """`host:port` as a PAC's PROXY directive wants it (IPv4-mapped addresses unwrapped, IPv6 bracketed)."""
    plain = plain_address(host)
    return f"[{plain}]:{port}" if ":" in plain else f"{plain}:{port}"


def pac_file(proxy: str | None, *, block_page_name: str,
             direct_networks: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()) -> str:
    """The PAC text: `proxy` is `host:port` (see `proxy_hostport`), or None for transparent mode (all DIRECT)."""
    if proxy is None:
        return ("// Schoolgate runs in transparent mode: the gateway's firewall sends web traffic through it.\n"
                'function FindProxyForURL(url, host) {\n  return "DIRECT";\n}\n')
    lines = [
        "// Schoolgate: the school's web filter.",
        "function FindProxyForURL(url, host) {",
        "  host = host.toLowerCase();",
        f'  if (host == "{_js(block_page_name.lower())}") return "PROXY {proxy}";',
        '  if (host == "localhost" || shExpMatch(host, "127.*")) return "DIRECT";',
    ]
    for net in direct_networks:
        if net.version == 4:   # isInNet() knows IPv4 only
            lines.append(f'  if (isInNet(host, "{net.network_address}", "{net.netmask}")) return "DIRECT";')
    lines += [f'  return "PROXY {proxy}";', "}", ""]
    return "\n".join(lines)


def _js(text: str) -> str:
    """A config value inside a JavaScript string literal."""
    return "".join(ch if ch.isalnum() or ch in ".-_" else f"\\u{ord(ch):04x}" for ch in text)
