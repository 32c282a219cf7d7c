"""CPU time Schoolgate's addons add to each request inside mitmproxy, measured without sockets.

    python -m bench.proxyhooks [--requests N] [--rounds R] [--chain] [--only NAME] [--per-child] [--profile] [--json]

The wrk benchmark (`bench.proxy`) is the figure that counts, but on a shared,
loaded machine its requests/s move by 2x between rounds.  This one replays the
benchmark's request (`GET http://127.0.0.1:8081/file`, KS2 laptop on loopback, the
teacher's override, the full-scale index) through two in-process `DumpMaster`s
that never listen: mitmdump's (mitmproxy's default addons and event
dispatch), the same addons dispatched as `schoolgate run` does (`direct`:
`proxy.dispatch`, each event only to the addons that handle it), and
Schoolgate's (that, with Schoolgate's pipeline added).  Each request is one flow on one of 50 keep-alive
client connections, driven through mitmproxy's own `handle_lifecycle` for
`requestheaders`, `request`, `responseheaders` and `response` (each followed by
mitmproxy's `update` event), so the dispatch cost is counted.  The figure is
process CPU time (all threads, so the visit writer's thread too, also shown on
its own) per request, the median of `--rounds` chunks for each master, chunks
alternating.

Instructions instead of CPU time, which the machine's load cannot move: run
one master (`--only`) under `valgrind --tool=callgrind` with two request counts;
the difference of the totals over the difference of the counts is the cost of
one request.

--chain also measures the same children added to mitmproxy as separate addons
(the layout before `addons.pipeline`); --per-child also times each child's hook bodies (a timing wrapper per call, so
the totals of that pass are a little inflated); --profile prints cProfile's top
functions of the Schoolgate pass.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import inspect
import io
import json
import logging
import os
import pstats
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mitmproxy import connection, ctx, hooks, http, options
from mitmproxy.proxy.layers.http import (HttpRequestHeadersHook, HttpRequestHook, HttpResponseHeadersHook,
                                         HttpResponseHook)
from mitmproxy.test import tflow
from mitmproxy.tools.dump import DumpMaster

from bench._peers import machine
from bench.categories import full_tree
from bench.proxy import html_body, prepare_school
from proxy.dispatch import dispatch_directly

URL, HOST = "http://127.0.0.1:8081/file", "127.0.0.1:8081"
HOOKS = ("client_connected", "http_connect", "requestheaders", "request", "responseheaders", "response", "error")
CONNECTIONS = 50


def clients(n: int = CONNECTIONS) -> list[connection.Client]:
    out = []
    for i in range(n):
        c = tflow.tclient_conn()
        c.peername = ("127.0.0.1", 40000 + i)
        out.append(c)
    return out


async def drive(master: DumpMaster, conns: list[connection.Client], n: int, body: bytes) -> None:
    """`n` requests as mitmproxy's HTTP layer would hook them, round-robin over the connections."""
    server = tflow.tserver_conn()
    addons = master.addons
    for i in range(n):
        flow = http.HTTPFlow(conns[i % len(conns)], server)
        flow.request = http.Request.make("GET", URL, b"", http.Headers(Host=HOST))
        flow.request.authority = HOST
        await addons.handle_lifecycle(HttpRequestHeadersHook(flow))
        await addons.handle_lifecycle(HttpRequestHook(flow))
        if flow.response is None:
            flow.response = http.Response.make(200, body, {"Content-Type": "text/html", "Server": "nginx"})
        elif flow.response.status_code != 200:
            raise RuntimeError(f"the request was answered {flow.response.status_code}: {flow.response.text!r}")
        await addons.handle_lifecycle(HttpResponseHeadersHook(flow))
        await addons.handle_lifecycle(HttpResponseHook(flow))


def new_master(extra: list[object], direct: bool = True) -> DumpMaster:
    """A master with mitmproxy's default addons and `extra`; `direct`: as `schoolgate run` dispatches."""
    master = DumpMaster(options.Options(), with_termlog=False, with_dumper=False)
    if direct:
        dispatch_directly(master.addons)
    if extra:
        master.addons.add(*extra)
    master.options.update(connection_strategy="lazy")
    master.addons.trigger(hooks.ConfigureHook(set(master.options.keys())))
    return master


def activate(master: DumpMaster) -> None:
    """mitmproxy's `ctx` names one master; point it at the one about to run."""
    ctx.master = master
    ctx.options = master.options


class HookTimes:
    """CPU time of this thread spent in each child's hooks (the per-child pass; ~2 us of it is the timer)."""

    def __init__(self) -> None:
        self.ns: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)

    def wrap(self, child: object) -> None:
        for name in HOOKS:
            func = getattr(child, name, None)
            if func is None:
                continue
            key = f"{type(child).__name__}.{name}"
            setattr(child, name, self._async(key, func) if inspect.iscoroutinefunction(func)
                    else self._sync(key, func))

    def _sync(self, key: str, func: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any) -> Any:
            t = time.thread_time_ns()
            try:
                return func(*args)
            finally:
                self.ns[key] += time.thread_time_ns() - t
                self.calls[key] += 1
        return timed

    def _async(self, key: str, func: Callable[..., Any]) -> Callable[..., Any]:
        async def timed(*args: Any) -> Any:
            t = time.thread_time_ns()
            try:
                return await func(*args)
            finally:
                self.ns[key] += time.thread_time_ns() - t
                self.calls[key] += 1
        return timed


def schoolgate_addons(rt: Any, times: HookTimes | None = None, chain: bool = False) -> list[object]:
    """The pipeline as `schoolgate run` adds it; with `times`, around children whose hooks are timed;
    with `chain`, the children as separate mitmproxy addons (the layout before `addons.pipeline`)."""
    from addons import RuntimeRef, pipeline

    built = pipeline(RuntimeRef(rt))
    if chain and len(built) == 1 and hasattr(built[0], "children"):
        return list(built[0].children)
    if times is None:
        return built
    parent: Any = built[0] if len(built) == 1 and hasattr(built[0], "children") else None
    kids = list(parent.children) if parent is not None else built
    for kid in kids:
        times.wrap(kid)
    return [type(parent)(kids)] if parent is not None else kids


async def run(args: argparse.Namespace, say: Callable[..., None]) -> dict[str, object]:
    from proxy.context import Context
    from proxy.runtime import Runtime

    body = html_body()
    result: dict[str, object] = {"load_avg_before": os.getloadavg()[0], "requests_per_chunk": args.requests}
    with tempfile.TemporaryDirectory(prefix="sg-bench-hooks-") as tmp:
        config, data, _port = prepare_school(args.tree or full_tree(), Path(tmp) / "school", URL, say)
        rt = Runtime(Context(config_path=config, data_dir=data), background=False)
        await rt.start()
        try:
            conns = clients()
            masters = {"mitmdump": new_master([], direct=False), "direct": new_master([]),
                       "schoolgate": new_master(schoolgate_addons(rt))}
            if args.chain:
                masters["chain"] = new_master(schoolgate_addons(rt, chain=True))
            if args.only:
                masters = {args.only: masters[args.only]}
            for master in masters.values():   # warm up (imports, caches, first rows)
                activate(master)
                await drive(master, conns, args.warmup, body)
            per_req: dict[str, list[float]] = {name: [] for name in masters}
            others: dict[str, list[float]] = {name: [] for name in masters}   # threads other than the loop's
            for _ in range(args.rounds):
                for name, master in masters.items():
                    activate(master)
                    cpu, loop_cpu = time.process_time(), time.thread_time()
                    await drive(master, conns, args.requests, body)
                    if name in ("schoolgate", "chain"):
                        await rt.writer.flush()   # the rows written: the writer thread's CPU time counts too
                    spent, loop_spent = time.process_time() - cpu, time.thread_time() - loop_cpu
                    per_req[name].append(spent * 1e6 / args.requests)
                    others[name].append((spent - loop_spent) * 1e6 / args.requests)
            for name, values in per_req.items():
                result[f"{name}_cpu_us_per_req"] = round(statistics.median(values), 1)
                result[f"{name}_cpu_us_per_req_min"] = round(min(values), 1)
                result[f"{name}_other_threads_us_per_req"] = round(statistics.median(others[name]), 1)
            if args.only:
                return result
            result["schoolgate_extra_cpu_us_per_req"] = round(
                statistics.median(s - m for s, m in zip(per_req["schoolgate"], per_req["mitmdump"], strict=True)), 1)
            # Schoolgate's addons alone: against the same default addons dispatched the same way
            result["schoolgate_addons_cpu_us_per_req"] = round(
                statistics.median(s - m for s, m in zip(per_req["schoolgate"], per_req["direct"], strict=True)), 1)
            result["dispatch_saved_us_per_req"] = round(
                statistics.median(m - d for m, d in zip(per_req["mitmdump"], per_req["direct"], strict=True)), 1)
            if args.chain:
                result["chain_extra_cpu_us_per_req"] = round(
                    statistics.median(s - m for s, m in zip(per_req["chain"], per_req["direct"], strict=True)), 1)
                say("the children as separate addons (against mitmdump's addons dispatched directly): "
                    f"+{result['chain_extra_cpu_us_per_req']} us/request")
            say(f"mitmdump's addons {result['mitmdump_cpu_us_per_req']} us/request "
                f"({result['direct_cpu_us_per_req']} us dispatched as schoolgate run does: "
                f"{result['dispatch_saved_us_per_req']} us saved); with Schoolgate "
                f"{result['schoolgate_cpu_us_per_req']} us ({result['schoolgate_extra_cpu_us_per_req']:+} us against "
                f"mitmdump; Schoolgate's addons {result['schoolgate_addons_cpu_us_per_req']:+} us, of which "
                f"{result['schoolgate_other_threads_us_per_req']} us in other threads: the visit writer's)")
            if args.per_child:
                times = HookTimes()
                master = new_master(schoolgate_addons(rt, times))
                activate(master)
                await drive(master, conns, args.requests * 2, body)
                hook_us = {k: round(times.ns[k] / 1000 / times.calls[k], 1) for k in sorted(times.ns)}
                result["hook_us"] = hook_us
                for k, v in hook_us.items():
                    say(f"  {k:34} {v:7.1f} us")
            if args.profile:
                activate(masters["schoolgate"])
                prof = cProfile.Profile()
                prof.enable()
                await drive(masters["schoolgate"], conns, args.requests, body)
                prof.disable()
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(40)
                say(out.getvalue())
            await asyncio.sleep(rt.writer.flush_interval * 2 if hasattr(rt.writer, "flush_interval") else 1.0)
        finally:
            await rt.stop()
        result["visits_dropped"] = rt.writer.dropped if hasattr(rt.writer, "dropped") else None
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tree", type=Path, help="UT1-layout tarball (default: full scale, generated and cached)")
    ap.add_argument("--requests", type=int, default=2000, help="requests per chunk")
    ap.add_argument("--rounds", type=int, default=7, help="chunks per master, alternating")
    ap.add_argument("--chain", action="store_true", help="also measure the children as separate addons")
    ap.add_argument("--only", choices=("mitmdump", "direct", "schoolgate", "chain"),
                    help="measure one master only (for instruction counts: run under callgrind with two --requests)")
    ap.add_argument("--warmup", type=int, default=200, help="requests through each master before measuring")
    ap.add_argument("--per-child", action="store_true", help="also time each child's hooks")
    ap.add_argument("--profile", action="store_true", help="also print cProfile's top functions")
    ap.add_argument("--json", action="store_true", help="print only the JSON line")
    args = ap.parse_args()
    say: Callable[..., None] = (lambda *a: None) if args.json else (lambda *a: print(*a, flush=True))
    logging.basicConfig(level=logging.WARNING)
    result = asyncio.run(run(args, say))
    result["machine"] = machine()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
