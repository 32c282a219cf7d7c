"""proxy.pac: the PAC text itself (the real proxy serving it is tested in tests/addons/test_pac.py)."""
from __future__ import annotations

import ipaddress

from proxy.pac import pac_file, plain_address, proxy_hostport


def test_proxy_directive_names_the_address_as_a_pac_wants_it() -> None:
    assert proxy_hostport("10.20.0.1", 3128) == "10.20.0.1:3128"
    assert proxy_hostport("::ffff:10.20.0.1", 8080) == "10.20.0.1:8080"   # dual-stack socket, IPv4 client
    assert proxy_hostport("fd00::1%eth0", 8080) == "[fd00::1]:8080"
    assert proxy_hostport("gateway.school.lan", 8080) == "gateway.school.lan:8080"
    assert plain_address("[fd00::1]") == "fd00::1" and plain_address("wpad") == "wpad"


def test_transparent_mode_says_direct_for_everything() -> None:
    text = pac_file(None, block_page_name="schoolgate.local",
                    direct_networks=[ipaddress.ip_network("10.20.0.0/24")])
    assert 'return "DIRECT";' in text and "PROXY" not in text and "isInNet" not in text


def test_internal_networks_direct_ipv4_only_and_the_portal_name_escaped() -> None:
    text = pac_file("10.20.0.1:8080", block_page_name='evil".local',
                    direct_networks=[ipaddress.ip_network("10.20.0.0/24"), ipaddress.ip_network("fd00::/64")])
    assert 'isInNet(host, "10.20.0.0", "255.255.255.0")) return "DIRECT";' in text
    assert "fd00" not in text
    assert 'evil".local' not in text and 'evil\\u0022.local' in text
    assert text.rstrip().endswith('return "PROXY 10.20.0.1:8080";\n}')
