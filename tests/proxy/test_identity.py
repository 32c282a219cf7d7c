"""Who is asking: login, assigned user, device, network, guest; outsiders refused."""
from __future__ import annotations

import datetime as dt

import pytest

from config.loader import DEFAULT_CONFIG, load_settings
from config.schema import Settings
from proxy.identity import EmptyRegister, identify
from proxy.register import Device, RegisterSnapshot, User

TODAY = dt.date(2026, 11, 23)


@pytest.fixture(scope="module")
def s() -> Settings:
    return load_settings(DEFAULT_CONFIG)


@pytest.fixture(scope="module")
def reg() -> RegisterSnapshot:
    users = {u.username: u for u in [
        User("y3.pupil", "Oliver", "pupil", "ks2", consent=True),
        User("y1.pupil", "Amelia", "pupil", "ks1", consent=True),
        User("y5.noconsent", "Isla", "pupil", "ks2", consent=False),
        User("y6.banned", "Noah", "pupil", "ks2", consent=True, status="banned"),
        User("teacher", "Sam", "staff", "staff", consent=False),
    ]}
    devices = {d.name: d for d in [
        Device("teacher-laptop", "02:00:00:00:03:11", "10.20.3.11", "school_single_user", "teacher"),
        Device("loan-y3", None, "10.20.4.21", "loaned", "y3.pupil"),
        Device("ks1-ipad-01", None, "10.20.1.21", "school_shared"),
    ]}
    return RegisterSnapshot(users, devices)


def test_logged_in_user_takes_precedence_over_the_device(s: Settings, reg: RegisterSnapshot) -> None:
    who = identify(s, reg, "10.20.2.40", login="y1.pupil", today=TODAY)
    assert (who.user, who.group, who.role, who.source, who.user_state) == ("y1.pupil", "ks1", "pupil", "login",
                                                                            "active")
    who = identify(s, reg, "10.20.3.11", login="y3.pupil", today=TODAY)
    assert who.user == "y3.pupil" and who.group == "ks2"


def test_single_user_and_loaned_devices_count_as_their_user(s: Settings, reg: RegisterSnapshot) -> None:
    who = identify(s, reg, "10.20.3.11", today=TODAY)
    assert (who.user, who.group, who.device, who.source) == ("teacher", "staff", "teacher-laptop", "assigned")
    assert who.user_state == "active"      # staff need no parental consent
    who = identify(s, reg, "10.20.4.21", today=TODAY)
    assert (who.user, who.group, who.device_class) == ("y3.pupil", "ks2", "loaned")


def test_device_and_network_groups(s: Settings, reg: RegisterSnapshot) -> None:
    who = identify(s, reg, "10.20.1.21", today=TODAY)
    assert (who.group, who.device, who.source) == ("ks1", "ks1-ipad-01", "device")
    who = identify(s, reg, "10.20.2.99", today=TODAY)
    assert (who.group, who.device, who.source, who.network) == ("ks2", None, "network", "KS2 laptops")
    who = identify(s, reg, "10.20.60.7", today=TODAY)
    assert (who.group, who.access, who.tls, who.device_class) == ("guest", "internet_only", "passthrough",
                                                                   "visitor_owned")
    who = identify(s, reg, "10.20.70.7", today=TODAY)
    assert who.device_class == "pupil_owned" and who.access == "none"


def test_unassigned_staff_laptop_is_a_guest(s: Settings, reg: RegisterSnapshot) -> None:
    who = identify(s, reg, "10.20.3.99", today=TODAY)
    assert who.group == "guest" and who.source == "guest" and who.known


def test_register_states_come_through(s: Settings, reg: RegisterSnapshot) -> None:
    assert identify(s, reg, "10.20.2.5", login="y5.noconsent", today=TODAY).user_state == "no_consent"
    assert identify(s, reg, "10.20.2.5", login="y6.banned", today=TODAY).user_state == "banned"
    stranger = identify(s, reg, "10.20.2.5", login="nobody", today=TODAY)
    assert stranger.user_state == "unknown" and stranger.user == "nobody"


def test_outsiders_and_garbage_are_unknown_clients(s: Settings) -> None:
    for ip in ("192.0.2.10", "8.8.8.8", "not-an-ip", "", "2001:db8::1"):
        assert not identify(s, EmptyRegister(), ip, today=TODAY).known
    mapped = identify(s, EmptyRegister(), "::ffff:10.20.2.5", today=TODAY)
    assert mapped.known and mapped.group == "ks2" and mapped.client_ip == "10.20.2.5"


def test_devices_registered_by_mac_are_found_through_the_arp_table(s: Settings, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from proxy.arp import read_arp_table

    arp = tmp_path / "arp"
    arp.write_text(
        "IP address       HW type     Flags       HW address            Mask     Device\n"
        "10.20.2.77       0x1         0x2         02:AA:00:00:02:77     *        eth1\n"
        "10.20.2.78       0x1         0x0         00:00:00:00:00:00     *        eth1\n"
        "garbage\n")
    table = read_arp_table(arp)
    assert table == {"10.20.2.77": "02:aa:00:00:02:77"}
    assert read_arp_table(tmp_path / "missing") == {}
    devices = {"ks2-by-mac": Device("ks2-by-mac", "02:aa:00:00:02:77", "", "school_shared")}
    reg = RegisterSnapshot({}, devices)
    who = identify(s, reg, "10.20.2.77", today=TODAY, arp=table)
    assert who.device == "ks2-by-mac" and who.group == "ks2"
    assert identify(s, reg, "10.20.2.78", today=TODAY, arp=table).device is None
