"""The pure policy function, rule by rule, against the demo school's config."""
from __future__ import annotations

import datetime as dt
import ipaddress
from zoneinfo import ZoneInfo

import pytest

from config.loader import DEFAULT_CONFIG, load_settings
from config.schema import Settings
from proxy.decision import Action, Page
from proxy.policy import Identity, Override, Request, decide, should_intercept

LONDON = ZoneInfo("Europe/London")
LESSON = dt.datetime(2026, 11, 23, 10, 0, tzinfo=LONDON)      # Monday, in school hours
EVENING = dt.datetime(2026, 11, 23, 18, 0, tzinfo=LONDON)


@pytest.fixture(scope="module")
def s() -> Settings:
    return load_settings(DEFAULT_CONFIG)


def who(group: str = "ks2", **kw: object) -> Identity:
    base: dict[str, object] = dict(client_ip="10.20.2.5", known=True, group=group, device_class="school_shared")
    base.update(kw)
    return Identity(**base)  # type: ignore[arg-type]


def req(host: str = "example.org", *cats: str, **kw: object) -> Request:
    return Request(host=host, categories=frozenset(cats), **kw)  # type: ignore[arg-type]


def test_allowed_by_default(s: Settings) -> None:
    d = decide(s, who(), req(), LESSON)
    assert d.action is Action.ALLOW and d.rule == "allow" and not d.flagged and d.group == "ks2"


def test_outsiders_are_refused_before_anything_else(s: Settings) -> None:
    d = decide(s, who(known=False), req("x.test", "iwf"), LESSON)
    assert d.blocked and d.page is Page.REFUSED and d.rule == "client.outside_networks"


@pytest.mark.parametrize("group", ["ks1", "ks2", "staff", "guest"])
def test_illegal_tier_first_for_every_group_and_always_flagged(s: Settings, group: str) -> None:
    d = decide(s, who(group, device_class="pupil_owned"), req("bad.test", "iwf", "child"), LESSON)
    assert d.page is Page.ILLEGAL and d.rule == "illegal_tier"
    assert d.flagged and d.severity == "immediate" and d.categories == ("iwf",)


def test_illegal_tier_not_lifted_by_overrides(s: Settings) -> None:
    ov = [Override(1, "staff", LESSON - dt.timedelta(minutes=1), LESSON + dt.timedelta(hours=1), domain="bad.test"),
          Override(2, "staff", LESSON - dt.timedelta(minutes=1), LESSON + dt.timedelta(hours=1), category="ctiru")]
    assert decide(s, who("staff"), req("www.bad.test", "ctiru"), LESSON, ov).page is Page.ILLEGAL


def test_pupil_owned_devices_are_not_allowed(s: Settings) -> None:
    d = decide(s, who("guest", device_class="pupil_owned", access="none"), req(), LESSON)
    assert d.page is Page.DEVICE_NOT_ALLOWED and d.rule == "device.not_allowed"


@pytest.mark.parametrize("state,rule,page", [
    ("no_consent", "register.no_consent", Page.NOT_AUTHORISED),
    ("banned", "register.banned", Page.ACCESS_REMOVED),
    ("revoked", "register.revoked", Page.ACCESS_REMOVED),
    ("unknown", "register.unknown_user", Page.NOT_AUTHORISED),
])
def test_register_states(s: Settings, state: str, rule: str, page: Page) -> None:
    d = decide(s, who(user="y5.pupil", role="pupil", user_state=state), req(), LESSON)
    assert d.blocked and d.rule == rule and d.page is page
    assert "y5.pupil" in d.reason


def test_internet_only_devices_never_reach_the_internal_network(s: Settings) -> None:
    visitor = who("guest", device_class="visitor_owned", access="internet_only", tls="passthrough")
    d = decide(s, visitor, req("10.20.0.5", host_kind="ipv4", dest_ips=(ipaddress.ip_address("10.20.0.5"),)), LESSON)
    assert d.page is Page.INTERNAL and d.rule == "network.internal_only_device"
    d = decide(s, visitor, req("intranet.school", dest_ips=(ipaddress.ip_address("10.20.0.9"),)), LESSON)
    assert d.page is Page.INTERNAL
    assert decide(s, visitor, req("example.org", dest_ips=(ipaddress.ip_address("192.0.2.1"),)), LESSON).action \
        is Action.ALLOW
    assert not d.intercept
    # a school laptop may use the internal network
    assert decide(s, who(), req("10.20.0.5", host_kind="ipv4",
                                dest_ips=(ipaddress.ip_address("10.20.0.5"),)), LESSON).rule == "bare_ip"


def test_unparseable_hosts_block_pupils_only(s: Settings) -> None:
    bad = req("", host_kind="invalid", problem="label longer than 63")
    d = decide(s, who(), bad, LESSON)
    assert d.blocked and d.rule == "host.unparseable" and "63" in d.reason
    assert decide(s, who("staff"), bad, LESSON).action is Action.ALLOW


def test_bare_ip_urls_blocked_for_pupils_and_flagged_as_configured(s: Settings) -> None:
    d = decide(s, who(), req("93.184.216.34", host_kind="ipv4"), LESSON)
    assert d.blocked and d.rule == "bare_ip" and d.flagged and d.severity == "digest"
    assert decide(s, who("staff"), req("93.184.216.34", host_kind="ipv4"), LESSON).action is Action.ALLOW


def test_category_blocks_by_group(s: Settings) -> None:
    for group, host_cats, blocked in [
        ("ks2", ("gambling",), True), ("ks2", ("social_networks",), True), ("ks2", ("news",), False),
        ("staff", ("social_networks",), False), ("staff", ("gambling",), True),
        ("guest", ("social_networks",), True), ("guest", ("webmail",), False),
        ("ks1", ("child", "gambling"), True),
    ]:
        d = decide(s, who(group), req("x.test", *host_cats), LESSON)
        assert d.blocked is blocked, (group, host_cats, d)
        if blocked:
            assert d.rule == "category.blocked" and d.page is Page.CATEGORY


def test_flagged_categories_carry_their_severity(s: Settings) -> None:
    d = decide(s, who(), req("x.test", "adult"), LESSON)
    assert d.blocked and d.flagged and d.severity == "immediate"
    d = decide(s, who(), req("x.test", "hacking"), LESSON)
    assert d.flagged and d.severity == "digest"
    d = decide(s, who(), req("x.test", "games"), LESSON)
    assert d.blocked and not d.flagged


def test_games_in_school_hours_only(s: Settings) -> None:
    d = decide(s, who(), req("miniclip.com", "games"), LESSON)
    assert d.blocked and d.rule == "category.school_hours" and "school hours" in d.reason
    assert decide(s, who(), req("miniclip.com", "games"), EVENING).action is Action.ALLOW
    saturday = LESSON + dt.timedelta(days=5)
    assert decide(s, who(), req("miniclip.com", "games"), saturday).action is Action.ALLOW


def test_overrides_by_category_and_domain_expire_by_themselves(s: Settings) -> None:
    start, end = LESSON - dt.timedelta(minutes=5), LESSON + dt.timedelta(minutes=25)
    by_cat = Override(7, "ks2", start, end, category="games", by="Mr Teacher")
    d = decide(s, who(), req("miniclip.com", "games"), LESSON, [by_cat])
    assert d.action is Action.ALLOW and d.rule == "override" and d.override_id == 7 and "Mr Teacher" in d.reason
    assert decide(s, who(), req("miniclip.com", "games"), end, [by_cat]).blocked
    assert decide(s, who("ks1"), req("miniclip.com", "games"), LESSON, [by_cat]).blocked  # other group
    by_domain = Override(8, "ks2", start, end, domain="youtube-kids.test")
    d = decide(s, who(), req("www.youtube-kids.test", "social_networks"), LESSON, [by_domain])
    assert d.action is Action.ALLOW and d.rule == "override"
    assert decide(s, who(), req("notyoutube-kids.test", "social_networks"), LESSON, [by_domain]).blocked


def test_walled_garden(s: Settings) -> None:
    assert decide(s, who("ks1"), req("cbeebies.com", "child"), LESSON).action is Action.ALLOW
    d = decide(s, who("ks1"), req("example.org"), LESSON)
    assert d.blocked and d.page is Page.WALLED_GARDEN and d.rule == "walled_garden"
    start, end = LESSON - dt.timedelta(minutes=1), LESSON + dt.timedelta(minutes=30)
    d = decide(s, who("ks1"), req("www.example.org"), LESSON, [Override(3, "ks1", start, end, domain="example.org")])
    assert d.action is Action.ALLOW


def test_circumvention_blocks_with_its_own_rule(s: Settings) -> None:
    d = decide(s, who(), req("example.org", circumvention_rule="circumvention.doh_shape",
                             circumvention_reason="DNS over HTTPS"), LESSON)
    assert d.blocked and d.rule == "circumvention.doh_shape" and d.flagged and d.severity == "immediate"
    d = decide(s, who("staff"), req("nordvpn.com", "vpn", circumvention_rule="circumvention.category_vpn",
                                    circumvention_reason="a VPN service"), LESSON)
    assert d.blocked and d.rule == "circumvention.category_vpn" and d.categories == ("vpn",) and d.flagged


def test_watch_listed_search_flags_but_allows(s: Settings) -> None:
    d = decide(s, who(), req("www.google.com", "searchengines", watch_topic="self_harm"), LESSON)
    assert d.action is Action.ALLOW and d.flagged and d.severity == "immediate" and d.rule == "allow.search_watch"


def test_unknown_group_falls_back_to_guest(s: Settings) -> None:
    assert decide(s, who("nonexistent"), req("x.test", "social_networks"), LESSON).group == "guest"


def test_tls_interception_choices(s: Settings) -> None:
    assert should_intercept(s, who(), "www.natwest.com")                       # pupils: always
    assert not should_intercept(s, who("staff"), "www.natwest.com")            # staff: banking passes
    assert should_intercept(s, who("staff"), "example.org")
    assert not should_intercept(s, who("guest", tls="passthrough"), "example.org")


def test_explain_json_contract(s: Settings) -> None:
    out = decide(s, who(), req("x.test", "gambling"), LESSON).to_json()
    assert {"action", "group", "categories", "reason", "rule", "alert"} <= set(out)
    assert out["action"] == "block" and out["categories"] == ["gambling"] and out["alert"] is False


def test_flagged_categories_per_group(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "school.toml"
    path.write_text(DEFAULT_CONFIG.read_text().replace(
        'block_in_hours = ["games"]', 'block_in_hours = ["games"]\nalert_digest = ["chat"]\nalert_immediate = ["dating"]'))
    s2 = load_settings(path)
    assert decide(s2, who(), req("x.test", "chat"), LESSON).severity == "digest"
    assert decide(s2, who(), req("x.test", "dating"), LESSON).severity == "immediate"
    assert not decide(s2, who("guest"), req("x.test", "dating"), LESSON).flagged    # other groups unchanged
    assert not decide(load_settings(DEFAULT_CONFIG), who(), req("x.test", "chat"), LESSON).flagged
