"""`schoolgate`: the command line (a contract: DESIGN.md "Command line").

Every command takes `--config PATH` and `--data DIR`, before or after the
command's name.  Exit codes: 0 done, 1 operational error, 2 bad usage or bad
config.  Each group of commands lives in its own module, with an
`add_parsers(sub, common)` that declares it; `main` only dispatches.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from alerts import cli as alerts_cli
from proxy import cmd_admin, cmd_config, cmd_register, cmd_service, cmd_status
from proxy.context import Context, run_in_context
from reports import cli as reports_cli

logger = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace, Context], int]

MODULES = (cmd_service, cmd_config, cmd_register, cmd_admin, cmd_status, alerts_cli, reports_cli)
SERVICES = frozenset({"run", "dns"})   # long-running: log at INFO by default


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                        help="config file (default: $SCHOOLGATE_CONFIG, else config/example.toml)")
    common.add_argument("--data", type=Path, default=argparse.SUPPRESS,
                        help="data directory (default: $SCHOOLGATE_DATA, else ./var)")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log more detail")
    parser = argparse.ArgumentParser(prog="schoolgate", parents=[common],
                                     description="Schoolgate: the school's web filter.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in MODULES:
        module.add_parsers(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 for bad usage, 0 for --help
        return int(exc.code or 0)
    service = args.command in SERVICES
    level = logging.DEBUG if getattr(args, "verbose", False) else logging.INFO if service else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler: Handler = args.handler
    return run_in_context(handler, args, getattr(args, "config", None), getattr(args, "data", None))


def not_yet(name: str) -> Handler:
    """A handler for a command of DESIGN.md that a later release brings."""

    def handler(args: argparse.Namespace, ctx: Context) -> int:
        print(f"schoolgate: '{name}' is not yet available in this version.", file=sys.stderr)
        return 1

    return handler


if __name__ == "__main__":
    sys.exit(main())
