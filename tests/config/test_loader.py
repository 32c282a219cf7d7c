"""The config loader: the demo config loads, and every mistake names file, key and line."""
from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest

from config.errors import ConfigError
from config.loader import DEFAULT_CONFIG, load_settings

EXAMPLE = DEFAULT_CONFIG.read_text()


def test_example_config_loads_into_frozen_settings() -> None:
    s = load_settings(DEFAULT_CONFIG)
    assert s.school.name == "Demo Primary School"
    assert str(s.school.timezone) == "Europe/London"
    assert set(s.groups) == {"ks1", "ks2", "staff", "guest"}
    ks2 = s.groups["ks2"]
    assert "adult" in ks2.block and "social_networks" in ks2.block and "iwf" in ks2.block
    assert ks2.block_in_hours == frozenset({"games"})
    assert s.groups["ks1"].mode == "walled_garden"
    assert "child" in s.groups["ks1"].allow
    assert "social_networks" not in s.groups["staff"].block
    assert s.alerts.recipients == ("esafety@demo-primary.example", "head@demo-primary.example")
    assert "iwf" in s.alerts.immediate and "vpn" in s.alerts.immediate
    net = s.network_for(ipaddress.ip_address("10.20.70.5"))
    assert net is not None and net.device_class == "pupil_owned"
    assert s.network_for(ipaddress.ip_address("127.0.0.1")).group == "ks2"  # type: ignore[union-attr]
    assert s.network_for(ipaddress.ip_address("192.0.2.1")) is None
    assert s.is_internal(ipaddress.ip_address("10.20.0.5"))
    monday_lesson = dt.datetime(2026, 11, 23, 10, 0)
    assert s.school.hours.contains(monday_lesson)
    assert not s.school.hours.contains(monday_lesson.replace(hour=16))
    assert not s.school.hours.contains(dt.datetime(2026, 11, 22, 10, 0))  # Sunday
    with pytest.raises(AttributeError):
        s.school.name = "x"  # type: ignore[misc]


def _broken(tmp_path: Path, old: str, new: str) -> ConfigError:
    assert old in EXAMPLE, old
    path = tmp_path / "school.toml"
    path.write_text(EXAMPLE.replace(old, new, 1))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return info.value


def _line(text: str, needle: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    raise AssertionError(needle)


CASES = [
    # (what is replaced, by what, key named, words in the message, text on the line named)
    ('timezone = "Europe/London"', 'timezone = "Europe/Londn"', "school.timezone",
     "IANA time zone", 'timezone = "Europe/Londn"'),
    ('start = "08:30"', 'start = "8.30am"', "school.hours.start", "HH:MM", 'start = "8.30am"'),
    ('end = "15:30"', 'end = "07:00"', "school.hours.end", "must be after start", 'end = "07:00"'),
    ('cidr = "10.20.2.0/24"', 'cidr = "10.20.2.5/24"', "networks[1].cidr", "host bits", 'cidr = "10.20.2.5/24"'),
    ('device_class = "loaned"', 'device_class = "borrowed"', "networks[3].device_class",
     "expected one of school_shared", 'device_class = "borrowed"'),
    ('group = "ks2"\n\n[[networks]]\nname = "Staff laptops"', 'group = "ks9"\n\n[[networks]]\nname = "Staff laptops"',
     "networks[1].group", "not defined", 'group = "ks9"'),
    ('mode = "walled_garden"', 'mode = "walled-garden"', "groups.ks1.mode", "expected one of blocklist",
     'mode = "walled-garden"'),
    ('block_bare_ip = true\nyoutube = "strict"\n\n[groups.ks2]', 'block_bare_ip = "yes"\nyoutube = "strict"\n\n[groups.ks2]',
     "groups.ks1.block_bare_ip", "expected true or false", 'block_bare_ip = "yes"'),
    ('youtube = "moderate"\nfail_closed = false\n\n[groups.guest]', 'youtube = "relaxed"\nfail_closed = false\n\n[groups.guest]',
     "groups.staff.youtube", "strict, moderate, off", 'youtube = "relaxed"'),
    ('block = ["@everyone", "@pupils"]\nblock_in_hours', 'block = ["@everyone", "@pupil"]\nblock_in_hours',
     "groups.ks2.block", "'@pupil' names no entry", 'block = ["@everyone", "@pupil"]'),
    ('recipients = ["esafety@demo-primary.example", "head@demo-primary.example"]',
     'recipients = ["esafety@demo-primary.example", "head.demo-primary.example"]',
     "alerts.recipients[1]", "email address", 'recipients = ["esafety'),
    ('port = 25', 'port = 250000', "smtp.port", "from 1 to 65535", "port = 250000"),
    ('port = 25', 'port = "25"', "smtp.port", "expected a whole number", 'port = "25"'),
    ('username = ""', 'username = ""\npassword = "hunter2"', "smtp.password", "secrets never go in the main config",
     'password = "hunter2"'),
    ('listen_port = 8080', 'listen_port = 8080\nlisten_prot = 9090', "proxy.listen_prot", "unknown key",
     "listen_prot = 9090"),
    ('mode = "regular"', 'mode = "transparant"', "proxy.mode", "expected one of regular, transparent",
     'mode = "transparant"'),
    ('upstreams = ["127.0.0.53"]', 'upstreams = ["resolver.local"]', "dns.upstreams[0]", "IP address",
     'upstreams = ["resolver.local"]'),
    ('format = "ut1"', 'format = "ut1"\nillegal = "maybe"', "categories.sources[0].illegal", "true or false",
     'illegal = "maybe"'),
    ('max_shrink = 0.5', 'max_shrink = 5', "categories.max_shrink", "from 0.0 to 1.0", "max_shrink = 5"),
    ('count = 10', 'count = 1', "alerts.repeated_blocks.count", "from 2 to 10000", "count = 1"),
    ('weekday = "mon"', 'weekday = "funday"', "reports.weekday", "day name", 'weekday = "funday"'),
    ('self_harm = "immediate"', 'self_harm = "urgent"', "alerts.watchlists.self_harm", "immediate, digest",
     'self_harm = "urgent"'),
]


@pytest.mark.parametrize("old,new,key,words,on_line", CASES, ids=[c[2] for c in CASES])
def test_each_mistake_names_file_key_line_and_expectation(
    tmp_path: Path, old: str, new: str, key: str, words: str, on_line: str
) -> None:
    err = _broken(tmp_path, old, new)
    text = (tmp_path / "school.toml").read_text()
    matches = [i for i in err.issues if i.key == key]
    assert matches, f"no issue for {key}: {err}"
    issue = matches[0]
    assert words in issue.message
    assert issue.file == tmp_path / "school.toml"
    assert issue.line == _line(text, on_line)
    assert f"school.toml:{issue.line}: {key}: " in str(err)


def test_proxy_mode_transparent_loads_and_refuses_proxy_login(tmp_path: Path) -> None:
    path = tmp_path / "school.toml"
    transparent = EXAMPLE.replace('mode = "regular"', 'mode = "transparent"')
    path.write_text(transparent)
    assert load_settings(path).proxy.mode == "transparent"
    assert load_settings(DEFAULT_CONFIG).proxy.mode == "regular"
    path.write_text(transparent.replace('auth = "none"', 'auth = "htpasswd"\nhtpasswd = "users.htpasswd"'))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    [issue] = [i for i in info.value.issues if i.key == "proxy.mode"]
    assert 'proxy login (auth = "htpasswd") needs mode = "regular"' in issue.message
    assert issue.line == _line(path.read_text(), 'mode = "transparent"')


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "school.toml"
    text = EXAMPLE.replace('port = 25', 'port = "x"').replace('weekday = "mon"', 'weekday = "x"')
    text = text.replace('timezone = "Europe/London"', 'timezone = "Mars/Olympus"')
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    keys = {i.key for i in info.value.issues}
    assert {"smtp.port", "reports.weekday", "school.timezone"} <= keys


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "school.toml"
    path.write_text(EXAMPLE.replace('name = "Demo Primary School"', 'name = "Demo Primary School'))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    issue = info.value.issues[0]
    assert issue.key == "(syntax)" and issue.line == _line(EXAMPLE, 'name = "Demo Primary School"')


def test_missing_required_section_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "school.toml"
    path.write_text('[school]\nname = "x"\n[school.hours]\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    keys = {i.key for i in info.value.issues}
    assert {"groups", "alerts", "smtp", "networks"} <= keys
    with pytest.raises(ConfigError, match="cannot read the config file"):
        load_settings(tmp_path / "absent.toml")


def test_relative_paths_resolve_beside_the_config(tmp_path: Path) -> None:
    s = load_settings(DEFAULT_CONFIG)
    assert s.register.users_csv == DEFAULT_CONFIG.parent / "users.csv"
    assert s.register.users_csv.exists()


def test_ldap_login_spec_is_checked_and_the_password_comes_from_the_environment(tmp_path: Path) -> None:
    from proxy.service import ldap_spec

    err = _broken(tmp_path, 'auth = "none"', 'auth = "ldap"\nldap = "ldaps:dc1.school.local:CN=svc:hunter2:OU=Users"')
    assert any(i.key == "proxy.ldap" and "ldap[s]:SERVER" in i.message for i in err.issues)
    good = EXAMPLE.replace('auth = "none"', 'auth = "ldap"\nldap = "ldaps:dc1.school.local:636:CN=svc,DC=school:OU=Users,DC=school"')
    path = tmp_path / "ok.toml"
    path.write_text(good)
    s = load_settings(path)
    assert ldap_spec(s.proxy.ldap, "pw:1") == "ldaps:dc1.school.local:636:CN=svc,DC=school:pw:1:OU=Users,DC=school"
    assert ldap_spec("ldap:dc1:CN=svc:OU=Users", "pw") == "ldap:dc1:CN=svc:pw:OU=Users"
