"""`schoolgate dns`: the DNS resolver alone, with the runtime (register refresh, query log).

`start_dns(runtime)` is also what `schoolgate run` calls when `[dns] enabled`
is true, so the resolver shares the proxy's engine and writer there.

`python -m proxy.cmd_dns [--config PATH] [--data DIR] [--port N]` is the same
command without loading the rest of the CLI (mitmproxy above all): it starts
in a fraction of the time and memory, which is what a resolver restarted by
a service manager wants.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from proxy import heap
from proxy.context import Context, run_in_context
from proxy.dns import DnsServer, resolver_for
from proxy.runtime import Runtime

logger = logging.getLogger(__name__)


async def start_dns(runtime: Runtime, listen_port: int | None = None) -> DnsServer:
    """Start the resolver on the configured address (or `listen_port`) for a started runtime."""
    dns = runtime.settings.dns
    server = DnsServer(resolver_for(runtime), dns.listen_host, dns.listen_port if listen_port is None else listen_port)
    await server.start()
    return server


async def run_dns(ctx: Context, announce: Callable[[DnsServer], None], listen_port: int | None = None) -> int:
    """Run the resolver until SIGINT/SIGTERM; the runtime starts first and stops last."""
    runtime = Runtime(ctx, background=False)   # `schoolgate run` owns alerts, reports and metrics
    await runtime.start()
    try:
        server = await start_dns(runtime, listen_port)
    except BaseException:
        await runtime.stop()
        raise
    heap.freeze_startup_objects()   # no full garbage collection walks them again (proxy.heap)
    announce(server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("stopping the DNS resolver")
    await server.stop()
    await runtime.stop()
    return 0


def dns_command(args: argparse.Namespace, ctx: Context) -> int:
    """The handler of `schoolgate dns [--port N]`."""
    settings = ctx.settings
    if not ctx.index_path.exists():
        print("schoolgate: no category index yet; run `schoolgate init` first "
              f"(looked for {ctx.index_path})", file=sys.stderr)
        return 1
    if not settings.dns.upstreams:
        print(f"schoolgate: {ctx.config_path}: [dns] upstreams: at least one upstream resolver is needed",
              file=sys.stderr)
        return 2

    def announce(server: DnsServer) -> None:
        host, port = server.address
        print(f"Schoolgate DNS resolver for {settings.school.name}")
        print(f"  listening:  {host} port {port} (UDP and TCP)")
        print("  upstreams:  " + ", ".join(f"{h}:{p}" for h, p in settings.dns.upstreams))
        print(f"  blocked:    answered as {settings.dns.block_answer}")
        print(f"  try it:     dig @{host} -p {port} example.com")
        print("Press Ctrl-C to stop.", flush=True)

    try:
        return asyncio.run(run_dns(ctx, announce, getattr(args, "port", None)))
    except OSError as exc:
        print(f"schoolgate: the DNS resolver could not start: {exc}", file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m proxy.cmd_dns`: `schoolgate dns` without the rest of the CLI."""
    parser = argparse.ArgumentParser(prog="python -m proxy.cmd_dns", description="Schoolgate's DNS resolver")
    parser.add_argument("--config", type=Path, default=None, help="config file (default: as `schoolgate`)")
    parser.add_argument("--data", type=Path, default=None, help="data directory (default: as `schoolgate`)")
    parser.add_argument("--port", type=int, default=None, help="listen on this port instead of the config's")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_in_context(dns_command, args, args.config, args.data)


if __name__ == "__main__":
    sys.exit(main())
