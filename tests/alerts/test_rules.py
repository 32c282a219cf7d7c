"""alerts.rules: which evaluations become hits, of which kind and severity (pure)."""
from __future__ import annotations

import datetime as dt

from alerts.procedure import kind_of
from alerts.rules import AlertRules, RepeatWindow
from proxy.decision import Action, Page
from tests.alerts.helpers import MONDAY, demo_settings, evaluation, topic_of

AT = MONDAY.astimezone(dt.UTC)


def rules() -> AlertRules:
    return AlertRules(demo_settings(), topic_of)


def test_adult_category_is_an_immediate_category_hit() -> None:
    [hit] = rules().classify(evaluation(), "http://pornhub.com/", AT)
    assert (hit.kind, hit.severity, hit.category) == ("category", "immediate", "adult")
    assert (hit.user, hit.device, hit.client_ip, hit.group) == ("y3.pupil", "ks2-laptop-07", "10.20.2.17", "ks2")
    assert hit.url == "http://pornhub.com/" and hit.action == "block"
    assert kind_of(hit) == "offensive"


def test_hacking_is_a_digest_hit() -> None:
    [hit] = rules().classify(evaluation("http://hack.example/", cats=("hacking",), severity="digest"),
                             "http://hack.example/", AT)
    assert (hit.kind, hit.severity, hit.category) == ("category", "digest", "hacking")
    assert kind_of(hit) == "security"


def test_blocked_but_not_flagged_makes_no_hit() -> None:
    ev = evaluation("http://miniclip.com/", cats=("games",), severity="", rule="category.school_hours")
    assert rules().classify(ev, "http://miniclip.com/", AT) == []


def test_illegal_tier_hit_holds_no_url_host_or_term() -> None:
    ev = evaluation("http://iwf-test-entry.test/secret/path", cats=("iwf",), rule="illegal_tier",
                    page=Page.ILLEGAL, search="should not be kept")
    [hit] = rules().classify(ev, "http://iwf-test-entry.test/secret/path", AT)
    assert (hit.kind, hit.severity, hit.category) == ("illegal", "immediate", "iwf")
    assert hit.url == "" and hit.search_term == "" and hit.reason == ""
    assert "iwf-test-entry" not in repr(hit)


def test_illegal_is_immediate_even_if_the_config_forgot_it() -> None:
    r = AlertRules(demo_settings(immediate=frozenset({"adult"})), topic_of)
    ev = evaluation("http://x.test/", cats=("ctiru",), rule="illegal_tier", severity="")
    [hit] = r.classify(ev, "http://x.test/", AT)
    assert (hit.kind, hit.severity) == ("illegal", "immediate")


def test_watch_list_search_uses_the_topic_severity() -> None:
    ev = evaluation("https://www.google.com/search?q=x", cats=("searchengines",), action=Action.ALLOW,
                    rule="allow.search_watch", severity="immediate", search="self_harm how to",
                    watch_phrase="how to")
    [hit] = rules().classify(ev, "https://www.google.com/search?q=x", AT)
    assert (hit.kind, hit.severity, hit.watch_topic, hit.search_term) == (
        "watchlist", "immediate", "self_harm", "self_harm how to")
    assert kind_of(hit) == "safeguarding"


def test_watch_list_digest_topic() -> None:
    s = demo_settings(watchlists={"bullying": "digest"})
    ev = evaluation("https://www.google.com/search?q=x", cats=(), action=Action.ALLOW, rule="allow.search_watch",
                    severity="digest", search="bullying words", watch_phrase="words")
    [hit] = AlertRules(s, topic_of).classify(ev, "u", AT)
    assert (hit.kind, hit.severity) == ("watchlist", "digest")


def test_circumvention_by_category_and_by_shape() -> None:
    [by_cat] = rules().classify(evaluation("http://nordvpn.com/", cats=("vpn",)), "http://nordvpn.com/", AT)
    assert (by_cat.kind, by_cat.category, by_cat.severity) == ("circumvention", "vpn", "immediate")
    ev = evaluation("https://dns.example/dns-query", cats=(), rule="circumvention.doh_shape")
    [shape] = rules().classify(ev, "https://dns.example/dns-query", AT)
    assert (shape.kind, shape.category) == ("circumvention", "doh_shape")
    assert kind_of(shape) == "circumvention"


def test_bare_ip_from_a_pupil_is_a_digest_hit() -> None:
    ev = evaluation("http://203.0.113.9/", cats=("bare-ip",), rule="bare_ip", severity="digest")
    [hit] = rules().classify(ev, "http://203.0.113.9/", AT)
    assert (hit.kind, hit.severity, hit.category) == ("bare_ip", "digest", "bare-ip")


def test_repeated_blocks_fire_at_n_within_m_minutes() -> None:
    r = rules()   # demo: 10 in 5 minutes, digest
    games = evaluation("http://miniclip.com/", cats=("games",), severity="", rule="category.school_hours")
    made = []
    for i in range(10):
        made += r.classify(games, "http://miniclip.com/", AT + dt.timedelta(seconds=20 * i))
    assert [(h.kind, h.severity, h.attempts) for h in made] == [("repeated", "digest", 10)]
    # the window restarts: nine more do not fire
    for i in range(9):
        assert r.classify(games, "http://miniclip.com/", AT + dt.timedelta(minutes=4, seconds=i)) == []


def test_repeated_blocks_spread_out_do_not_fire_and_parts_of_pages_do_not_count() -> None:
    r = rules()
    games = evaluation("http://miniclip.com/", cats=("games",), severity="", rule="category.school_hours")
    for i in range(30):   # one every 40 s: never 10 within 5 minutes
        assert r.classify(games, "u", AT + dt.timedelta(seconds=40 * i)) == []
    for i in range(30):   # images of a page are not attempts
        assert r.classify(games, "u", AT + dt.timedelta(hours=1, seconds=i), attempt=False) == []


def test_register_blocks_are_not_attempts() -> None:
    r = rules()
    banned = evaluation("http://bbc.co.uk/", cats=(), severity="", rule="register.banned")
    for i in range(20):
        assert r.classify(banned, "u", AT + dt.timedelta(seconds=i)) == []


def test_repeat_window_counts_per_person() -> None:
    w = RepeatWindow(3, 1)
    assert not w.add("user:a", AT) and not w.add("user:b", AT) and not w.add("user:a", AT)
    assert w.add("user:a", AT + dt.timedelta(seconds=59))
    assert not w.add("user:b", AT + dt.timedelta(seconds=61))   # b's first has left the window
