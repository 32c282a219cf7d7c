"""The resolver's chain: one query in, one answer out, every step with a type and a reason.

`Resolver.handle(packet, client_ip, udp)` walks the chain in order; the
first link that answers decides, and the query log gets one row with what
decided it:

 1. wire       malformed / multi-question / oversized -> FORMERR (or dropped)
 2. rate       the client's token bucket is empty     -> REFUSED (counted, not logged per query)
 3. identity   the client is on no school network    -> REFUSED (never an open resolver);
              so are other classes than IN and zone transfers
 4. local      canaries and the block page's name    -> answered here (`dnsanswers`)
 5. policy     `Engine.decide_name` (the proxy's policy function) blocks -> block answer
              (remembered for a short while by `proxy.dnsmemo.DecisionMemo`)
 6. safesearch the group's search engines            -> CNAME to the engine's safe host
 7. cache      a stored upstream answer               -> counted-down TTLs, the client's id/case
 8. upstream   forwarded (EDNS as sent), stored       -> or SERVFAIL when no upstream answers

Steps 1-7 run synchronously and `handle` returns the answer's bytes (or None
to drop); only a cache miss returns a coroutine for the server to await.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Protocol

from config.schema import Settings
from proxy.decision import Action, Decision
from proxy.dnsanswers import CNAME_TTL, Answers, cname_chain, cname_only, target_query
from proxy.dnscache import DnsCache
from proxy.dnsmemo import DecisionMemo, NamePolicy
from proxy.dnsratelimit import RateLimiter
from proxy.dnsupstream import UpstreamError, Upstreams
from proxy.dnswire import (
    CLASS_IN,
    QTYPE_CNAME,
    RCODE_REFUSED,
    RCODE_SERVFAIL,
    Query,
    WireError,
    error_answer,
    for_client,
    parse_query,
    rcode_answer,
    response_rcode,
    restamp,
)
from proxy.policy import Identity
from proxy.records import DnsRow
from proxy.safesearch import is_search_engine_host, safesearch_dns_target

logger = logging.getLogger(__name__)

Result = bytes | None | Awaitable[bytes | None]
ZONE_TRANSFERS = frozenset({251, 252})   # IXFR, AXFR: nothing to transfer through a filter


class QueryLog(Protocol):
    """Where the query log rows go (`proxy.visitwriter.BatchWriter`): one `DnsRow` tuple per query,
    the fields of `proxy.records.DnsQueryRecord` in order (a tuple is the cheapest thing to make
    on the event loop; the writer's thread does the rest)."""

    def submit(self, record: DnsRow) -> bool: ...


class Resolver:
    """The DNS chain of the module docstring, for one configuration."""


    def __init__(self, settings: Settings, policy: NamePolicy, upstreams: Upstreams, *,
                 log: QueryLog | None = None, now: Callable[[], dt.datetime] | None = None,
                 monotonic: Callable[[], float] = time.monotonic, cache: DnsCache | None = None,
                 max_inflight: int = 1_000) -> None:
        dns = settings.dns
        self.settings = settings
        self.policy = policy
        self.upstreams = upstreams
        self.log = log
        self.now = now or (lambda: dt.datetime.now(dt.UTC))
        self.monotonic = monotonic
        self.cache = cache or DnsCache(dns.min_ttl, dns.max_ttl, clock=monotonic)
        self.limiter = RateLimiter(dns.rate_limit_qps, dns.rate_limit_burst, clock=monotonic)
        self.answers = Answers(dns, settings.proxy.listen_host, settings.proxy.block_page_name)
        self.max_inflight = max_inflight
        self._inflight: dict[Hashable, asyncio.Future[tuple[bytes, str]]] = {}
        self.memo = DecisionMemo(policy, lifetime=max(1.0, min(float(dns.block_ttl), 60.0)))
        self.counts = {"queries": 0, "malformed": 0, "refused": 0, "ratelimited": 0, "blocked": 0,
                       "cached": 0, "forwarded": 0, "servfail": 0, "undecided": 0}

    # -- the chain ----------------------------------------------------------------------------
    def handle(self, packet: bytes, client_ip: str, udp: bool = True) -> Result:
        """The answer to one packet: bytes, None (drop) or an awaitable of either (cache miss)."""
        try:
            q = parse_query(packet)
        except WireError as exc:
            self.counts["malformed"] += 1
            return error_answer(packet, exc.rcode)
        if q is None:
            self.counts["malformed"] += 1
            return None
        self.counts["queries"] += 1
        start = self.monotonic()
        if not self.limiter.allow(client_ip, start):
            self.counts["ratelimited"] += 1
            return rcode_answer(q, RCODE_REFUSED)
        at = self.now()
        who, profile = self.memo.identity(client_ip, at, start)
        if not who.known or q.qclass != CLASS_IN or q.qtype in ZONE_TRANSFERS:
            self.counts["refused"] += 1
            rule = ("client.outside_networks" if not who.known else "dns.class_not_in" if q.qclass != CLASS_IN
                    else "dns.zone_transfer")
            self._log(at, who, q, who.group, "block", rule, None, start, RCODE_REFUSED)
            return rcode_answer(q, RCODE_REFUSED)
        name = q.name
        local = self.answers.local.get(name)
        if local is not None:
            answer = local.answer(q)
            self._log(at, who, q, who.group, local.action, local.rule, None, start, answer[3] & 0x0F)
            return answer
        try:
            decision = self.memo.decide(who, profile, name, at)
        except Exception:   # noqa: BLE001 - a broken index or state must not stop name resolution
            decision = self._undecided(who, name)
        if decision.blocked:
            self.counts["blocked"] += 1
            answer = self.answers.blocked(q)
            self._log(at, who, q, decision.group, "block", decision.rule, None, start, answer[3] & 0x0F)
            return answer
        key: Hashable
        target = self._safesearch_target(decision.group, name)
        if target is not None:
            if q.qtype == QTYPE_CNAME:
                answer = cname_only(q, target, self.cache.clamp(CNAME_TTL))
                self._log(at, who, q, decision.group, "allow", "dns.safesearch", None, start, 0)
                return answer
            key = (q.raw[12:q.qend - 4].lower(), q.qtype, q.edns, q.do, target)
            rule = "dns.safesearch"
        else:
            key = (q.raw[12:q.qend - 4].lower(), q.qtype, q.edns, q.do)
            rule = decision.rule
        cached = self.cache.get(key, q)
        if cached is not None:
            self.counts["cached"] += 1
            self._log(at, who, q, decision.group, "allow", rule, "cache", start, cached[3] & 0x0F)
            return for_client(cached, q, udp)
        return self._forward(q, key, target, at, who, decision, rule, start, udp)

    async def _forward(self, q: Query, key: Hashable, target: str | None, at: dt.datetime, who: Identity,
                       decision: Decision, rule: str, start: float, udp: bool) -> bytes:
        self.counts["forwarded"] += 1
        try:
            if target is None:
                upstream_answer, upstream = await self._upstream(key, q.raw)
                answer = restamp(upstream_answer, q)
            else:
                request = target_query(target, q.qtype, q.qclass, q.edns)
                target_key = (target, q.qtype, q.edns)
                upstream_answer, upstream = await self._upstream(target_key, request)
                answer = cname_chain(q, target, upstream_answer, self.cache.clamp(CNAME_TTL))
        except UpstreamError as exc:
            self.counts["servfail"] += 1
            logger.warning("no upstream answered %s %d: %s", q.name, q.qtype, exc)
            self._log(at, who, q, decision.group, "allow", rule, None, start, RCODE_SERVFAIL)
            return rcode_answer(q, RCODE_SERVFAIL)
        answer = self.cache.put(key, answer)
        self._log(at, who, q, decision.group, "allow", rule, upstream, start, response_rcode(answer))
        return for_client(answer, q, udp)

    async def _upstream(self, key: Hashable, request: bytes) -> tuple[bytes, str]:
        """One upstream exchange per key at a time: concurrent identical questions wait for it."""
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        if len(self._inflight) >= self.max_inflight:
            raise UpstreamError(f"{self.max_inflight} upstream queries already waiting")
        future: asyncio.Future[tuple[bytes, str]] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            result = await self.upstreams.query(request)
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, UpstreamError) else UpstreamError(repr(exc)))
            future.exception()           # retrieved: waiters get it, nobody else is warned
            raise
        finally:
            del self._inflight[key]
        future.set_result(result)
        return result

    # -- helpers ------------------------------------------------------------------------------
    def _undecided(self, who: Identity, name: str) -> Decision:
        """No decision could be made: the group's `fail_closed` says block (pupils) or allow."""
        self.counts["undecided"] += 1
        if self.counts["undecided"] == 1 or self.counts["undecided"] % 10_000 == 0:
            logger.exception("no policy decision for %s (%d so far); the group's fail_closed decides",
                             name, self.counts["undecided"])
        group = self.settings.groups.get(who.group)
        closed = group is None or group.fail_closed
        action = Action.BLOCK if closed else Action.ALLOW
        return Decision(action, who.group, "dns.undecided", "The filter could not decide; "
                        + ("blocked to be safe" if closed else "allowed (this group fails open)"))

    def _safesearch_target(self, group_name: str, name: str) -> str | None:
        engine = is_search_engine_host(name)
        if engine is None:
            return None
        group = self.settings.groups.get(group_name)
        if group is None:
            return None
        if engine != "youtube" and not group.safesearch:
            return None
        return safesearch_dns_target(name, group.youtube)

    def _log(self, at: dt.datetime, who: Identity, q: Query, group: str, action: str, rule: str,
             upstream: str | None, start: float, rcode: int) -> None:
        if self.log is None:
            return
        latency = int((self.monotonic() - start) * 1000)
        self.log.submit((at.timestamp(), who.client_ip, who.device, who.user, group, q.name or ".", q.qtype,
                         action, rule, upstream, latency, rcode))
