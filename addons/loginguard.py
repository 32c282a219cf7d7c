"""LoginGuard: proxy login failures are throttled per client address.

mitmproxy's `proxyauth` addon (which runs before ours) answers a request
with wrong credentials with 407.  This addon counts those answers per client
IP: a 407 to a request that offered a `Proxy-Authorization` header is a
failed login (the first 407 a browser gets, before it sends credentials at
all, is not).  After `schoolgate_login_failures` failures within
`schoolgate_login_window` minutes the client is locked out for one window:
its new connections are refused and its requests on open connections are
killed, whatever credentials they carry, so passwords cannot be guessed
faster than that.  Each lock-out is logged once (never the credentials).

The clock is the runtime's (injectable), or the given one.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

from mitmproxy import connection, ctx, exceptions, http

from addons.runtimeref import RuntimeRef

logger = logging.getLogger(__name__)

DEFAULT_FAILURES = 10
DEFAULT_WINDOW_MIN = 10
MAX_TRACKED = 10_000       # client addresses remembered before old ones are dropped


class LoginGuard:
    def __init__(self, ref: RuntimeRef, clock: Callable[[], float] | None = None) -> None:
        self.ref = ref
        self.clock = clock
        self.max_failures = DEFAULT_FAILURES
        self.window_s = DEFAULT_WINDOW_MIN * 60.0
        self._failures: dict[str, deque[float]] = {}
        self._locked: dict[str, float] = {}    # client IP -> locked until (clock seconds)
        self.lockouts = 0

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option("schoolgate_login_failures", int, DEFAULT_FAILURES,
                          "Failed proxy logins from one client address before it is locked out")
        loader.add_option("schoolgate_login_window", int, DEFAULT_WINDOW_MIN,
                          "Minutes in which those failures count, and how long the lock-out lasts")

    def configure(self, updated: set[str]) -> None:
        if "schoolgate_login_failures" in updated:
            value = ctx.options.schoolgate_login_failures
            if not 1 <= value <= 10_000:
                raise exceptions.OptionsError(f"schoolgate_login_failures must be 1 to 10000, not {value}")
            self.max_failures = value
        if "schoolgate_login_window" in updated:
            value = ctx.options.schoolgate_login_window
            if not 1 <= value <= 24 * 60:
                raise exceptions.OptionsError(f"schoolgate_login_window must be 1 to 1440 minutes, not {value}")
            self.window_s = value * 60.0

    def _now(self) -> float:
        if self.clock is not None:
            return self.clock()
        if self.ref.runtime is not None:
            return self.ref.runtime.clock().timestamp()
        return time.time()

    def locked(self, ip: str, now: float | None = None) -> bool:
        until = self._locked.get(ip)
        if until is None:
            return False
        if (self._now() if now is None else now) < until:
            return True
        del self._locked[ip]
        return False

    def client_connected(self, client: connection.Client) -> None:
        ip = client.peername[0] if client.peername else ""
        if self.locked(ip):
            client.error = "Schoolgate: too many failed logins from this address; try again later"

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._check(flow)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self._check(flow)

    def _check(self, flow: http.HTTPFlow) -> None:
        ip = flow.client_conn.peername[0] if flow.client_conn.peername else ""
        now = self._now()
        if self.locked(ip, now):
            if flow.killable:
                flow.kill()
            return
        resp = flow.response
        if resp is None or resp.status_code != 407 or "Proxy-Authorization" not in flow.request.headers:
            return
        self._failed(ip, now)

    def _failed(self, ip: str, now: float) -> None:
        recent = self._failures.get(ip)
        if recent is None:
            if len(self._failures) >= MAX_TRACKED:
                self._forget_old(now)
            recent = self._failures[ip] = deque()
        while recent and now - recent[0] >= self.window_s:
            recent.popleft()
        recent.append(now)
        if len(recent) >= self.max_failures:
            del self._failures[ip]
            self._locked[ip] = now + self.window_s
            self.lockouts += 1
            logger.warning("proxy login: %d failed logins from %s within %d minutes; refusing it for %d minutes",
                           len(recent), ip, round(self.window_s / 60), round(self.window_s / 60))

    def _forget_old(self, now: float) -> None:
        for ip in [ip for ip, q in self._failures.items() if not q or now - q[-1] >= self.window_s]:
            del self._failures[ip]
        if len(self._failures) >= MAX_TRACKED:   # still full of fresh failures: drop the oldest half
            for ip in sorted(self._failures, key=lambda k: self._failures[k][-1])[: MAX_TRACKED // 2]:
                del self._failures[ip]
