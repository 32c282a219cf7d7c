"""Where a command finds its config and data: the `--config` / `--data` contract of DESIGN.md."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.errors import ConfigError
from config.loader import default_config_path, load_settings
from config.schema import Settings
from proxy.migrations import SchemaError


def default_data_dir() -> Path:
    env = os.environ.get("SCHOOLGATE_DATA")
    return Path(env) if env else Path("var")


@dataclass
class Context:
    config_path: Path = field(default_factory=default_config_path)
    data_dir: Path = field(default_factory=default_data_dir)
    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The validated settings (raises `config.errors.ConfigError`)."""
        if self._settings is None:
            self._settings = load_settings(self.config_path)
        return self._settings

    @property
    def db_path(self) -> Path:
        db = self.settings.storage.database
        return db if db.is_absolute() else self.data_dir / db

    @property
    def index_path(self) -> Path:
        return self.data_dir / "categories.idx"

    @property
    def ca_dir(self) -> Path:
        return self.data_dir / "ca"

    @property
    def ca_cert(self) -> Path:
        return self.ca_dir / "mitmproxy-ca-cert.pem"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    def ensure_data_dir(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)


def run_in_context(handler: Callable[[Any, Context], int], args: Any, config: Path | None, data: Path | None) -> int:
    """Run one command with its `Context`; a config with problems is listed (exit 2), Ctrl-C exits 130."""
    ctx = Context()
    if config is not None:
        ctx.config_path = config
    ctx.data_dir = data or default_data_dir()
    try:
        return handler(args, ctx)
    except ConfigError as exc:
        print(f"schoolgate: the config has {len(exc.issues)} problem(s):", file=sys.stderr)
        for issue in exc.issues:
            print(f"  {issue}", file=sys.stderr)
        return 2
    except SchemaError as exc:   # e.g. a database written by a newer release: say so, leave it alone
        print(f"schoolgate: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
