"""Schoolgate for plain mitmproxy: `mitmdump -s addons/script.py --set schoolgate_config=PATH`.

`Bootstrap` declares the options, starts the shared runtime when mitmproxy
is running and stops it when mitmproxy shuts down; the pipeline after it is
the same one `schoolgate run` hosts.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

try:
    import addons as _addons  # noqa: F401
except ImportError:   # loaded by path with `mitmdump -s` from a checkout: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mitmproxy import ctx, exceptions  # noqa: E402

from addons import RuntimeRef, pipeline  # noqa: E402
from config.errors import ConfigError  # noqa: E402
from proxy.context import Context, default_data_dir  # noqa: E402
from proxy.runtime import Runtime  # noqa: E402

logger = logging.getLogger(__name__)


class Bootstrap:
    def __init__(self, ref: RuntimeRef) -> None:
        self.ref = ref
        self.context: Context | None = None

    def load(self, loader) -> None:  # type: ignore[no-untyped-def]
        loader.add_option("schoolgate_config", str, "", "Schoolgate config file (default: $SCHOOLGATE_CONFIG)")
        loader.add_option("schoolgate_data", str, "", "Schoolgate data directory (default: $SCHOOLGATE_DATA)")

    def configure(self, updated: set[str]) -> None:
        if "schoolgate_config" not in updated and "schoolgate_data" not in updated and self.context:
            return
        context = Context()
        if ctx.options.schoolgate_config:
            context.config_path = Path(ctx.options.schoolgate_config)
        context.data_dir = Path(ctx.options.schoolgate_data) if ctx.options.schoolgate_data else default_data_dir()
        try:
            context.settings  # noqa: B018  (validate now: bad values raise OptionsError)
        except ConfigError as exc:
            raise exceptions.OptionsError(str(exc)) from None
        self.context = context

    async def running(self) -> None:
        if self.ref.runtime is None and self.context is not None:
            runtime = Runtime(self.context)
            await runtime.start()
            self.ref.runtime = runtime

    async def done(self) -> None:
        if self.ref.runtime is not None:
            await self.ref.runtime.stop()
            self.ref.runtime = None


_ref = RuntimeRef()
addons = [Bootstrap(_ref), *pipeline(_ref)]
