"""proxy.dnsmemo: remembered and shared decisions are the engine's own, for every kind of name.

The memo decides a cold name with a decision made for another name of the same kind, categories
and covering overrides.  These tests hold it to `Engine.decide_name` name by name: the demo
school's lists (built-in and test lists), their `www.` names, unlisted names, IP literals,
invalid and international names, for every group and register state, with domain and category
overrides and local list tuning; and they check that a policy which reads more of the name is
caught and stops the sharing."""
from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from categories.tuning import LocalEntry, LocalLists
from proxy.context import Context
from proxy.decision import Action, Decision
from proxy.dnsmemo import DecisionMemo
from proxy.policy import Identity, Override
from proxy.runtime import Runtime
from tests.proxy.test_dns_support import school_data
from tests.support.school import MONDAY_LESSON, TEST_LISTS, Clock

CLIENTS = ("127.0.1.5", "127.0.2.5", "127.0.3.11", "127.0.60.5", "127.0.70.5", "127.0.4.26", "127.0.4.25",
           "127.0.50.9")
BUILTIN = Path(__file__).resolve().parents[2] / "categories" / "builtin"


def names() -> list[str]:
    listed = [n for values in TEST_LISTS.values() for n in values]
    for path in sorted(BUILTIN.glob("*.txt")):
        listed += [line.strip() for line in path.read_text().splitlines() if line.strip()
                   and not line.startswith("#")]
    rng = random.Random(7)
    unlisted = [f"site{i}-{rng.choice(['maths', 'news', 'play'])}.example" for i in range(40)]
    odd = ["192.0.2.7", "10.20.0.5", "2001:db8::1", "3232235777", "ex ample.com", "a..b", "-bad-.com",
           "xn--bcher-kva.example", "bücher.example", "under_score.example", "localhost", "com", "x" * 70 + ".com",
           "www.bet365.com.", "a.b.c.d.e.facebook.com"]
    return listed + ["www." + n for n in listed] + ["cdn." + n for n in listed[::3]] + unlisted + odd


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Context:
    return school_data(tmp_path_factory.mktemp("dns-memo"))


@pytest.fixture
async def runtime(base: Context) -> AsyncIterator[Runtime]:
    rt = Runtime(base, clock=Clock(MONDAY_LESSON), refresh_every=3600, background=False)
    await rt.start()
    yield rt
    await rt.stop()


def check_all(rt: Runtime, at: dt.datetime) -> DecisionMemo:
    memo = DecisionMemo(rt.engine, verify_every=1)    # every shared decision checked against the engine too
    for client in CLIENTS:
        who, profile = memo.identity(client, at, 0.0)
        for name in names():
            assert memo.decide(who, profile, name, at) == rt.engine.decide_name(who, name, at), (client, name)
    assert not memo.shared_off and memo.shared_hits > 100 and memo.verified == memo.shared_hits
    return memo


async def test_shared_decisions_are_the_engines_own(runtime: Runtime) -> None:
    at = MONDAY_LESSON.astimezone(dt.UTC)
    memo = check_all(runtime, at)
    assert memo.misses > memo.shared_hits      # most names were decided by the engine or shared
    check_all(runtime, at.replace(hour=18))     # after school: games are no longer blocked


async def test_with_overrides_and_local_tuning(runtime: Runtime) -> None:
    at = MONDAY_LESSON.astimezone(dt.UTC)
    start, end = at - dt.timedelta(minutes=5), at + dt.timedelta(minutes=30)
    engine = runtime.engine
    engine.overrides = (
        Override(1, "ks2", start, end, domain="facebook.com", by="teacher"),
        Override(2, "ks2", start, end, category="games", by="teacher"),
        Override(3, "staff", start, end, domain="www.tiktok.com", by="head"),
        Override(4, "ks1", start, end, domain="coolmath-games.com", by="teacher"),
        Override(5, "ks2", at + dt.timedelta(hours=2), at + dt.timedelta(hours=3), domain="amazon.co.uk"),
    )
    engine.local = LocalLists([
        LocalEntry("instagram.com", "social_networks", "allow", "assembly", "tech", at),
        LocalEntry("site3-maths.example", "games", "deny", "test", "tech", at),
        LocalEntry("cbeebies.com", "local_allow", "allow", "test", "tech", at),
        LocalEntry("bbc.co.uk", "adult", "deny", "test", "tech", at),
    ])
    check_all(runtime, at)


@dataclasses.dataclass
class ReadsTheName:
    """A policy that decides on more than the categories: names with "evil" in them are blocked."""

    engine: object
    register: object = None
    overrides: tuple[Override, ...] = ()
    local: object = None
    index: object = None

    def identify(self, client_ip: str, login: str | None = None, at: dt.datetime | None = None) -> Identity:
        return self.engine.identify(client_ip, login, at)   # type: ignore[attr-defined, no-any-return]

    def categorise_host(self, host: str) -> frozenset[str]:
        return frozenset()

    def decide_name(self, who: Identity, name: str, at: dt.datetime | None = None) -> Decision:
        if "evil" in name:
            return Decision(Action.BLOCK, who.group, "test.evil", "evil")
        return Decision(Action.ALLOW, who.group, "allow", "Allowed")


async def test_a_policy_that_reads_the_name_is_caught(runtime: Runtime) -> None:
    at = MONDAY_LESSON.astimezone(dt.UTC)
    policy = ReadsTheName(runtime.engine)
    memo = DecisionMemo(policy, verify_every=3)         # type: ignore[arg-type]
    who, profile = memo.identity("127.0.2.5", at, 0.0)
    assert memo.decide(who, profile, "fine.example", at).rule == "allow"
    decided = [memo.decide(who, profile, f"evil{i}.example", at).rule for i in range(6)]
    # shared (wrongly) until the third shared decision was checked; from then on, the engine's
    assert decided == ["allow", "allow", "test.evil", "test.evil", "test.evil", "test.evil"]
    assert memo.shared_off and memo.verified == 1
    assert memo.decide(who, profile, "evil1.example", at).rule == "test.evil"   # forgotten when caught
