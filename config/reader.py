"""A typed reader over parsed TOML that collects every problem, with its line.

Each getter returns a usable fallback after recording an issue, so that one
pass reports all mistakes at once (`schoolgate config check`).
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from config.errors import ConfigIssue
from config.lines import KeyPath, format_path, line_of

T = TypeVar("T")
_MISSING = object()
SECRET_KEY = re.compile(r"pass(word|wd|phrase)?|secret|token|api_?key|private_?key|credential", re.I)
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRETS_ELSEWHERE = ("secrets never go in the main config: put the password in an environment variable "
                     "(password_env) or a file readable by the service only (password_file)")


class Issues:
    def __init__(self, file: Path, lines: dict[KeyPath, int]) -> None:
        self.file = file
        self.lines = lines
        self.items: list[ConfigIssue] = []

    def add(self, path: KeyPath, message: str) -> None:
        self.items.append(ConfigIssue(self.file, format_path(path), line_of(self.lines, path), message))


class Table:
    """One TOML table at a key path; remembers which keys were read."""

    def __init__(self, data: dict[str, Any], path: KeyPath, issues: Issues) -> None:
        self.data = data
        self.path = path
        self.issues = issues
        self.used: set[str] = set()

    def error(self, key: str | None, message: str) -> None:
        self.issues.add(self.path + ((key,) if key is not None else ()), message)

    def _get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            self.error(key, "is required but missing")
        return default

    def table(self, key: str, required: bool = True) -> Table:
        value = self._get(key, _MISSING if required else {})
        if value is _MISSING:
            value = {}
        if not isinstance(value, dict):
            self.error(key, f"expected a table, got {_kind(value)}")
            value = {}
        return Table(value, self.path + (key,), self.issues)

    def tables(self, key: str) -> list[Table]:
        value = self._get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.error(key, f"expected an array of tables ([[{format_path(self.path + (key,))}]]), got {_kind(value)}")
            return []
        return [Table(v, self.path + (key, i), self.issues) for i, v in enumerate(value)]

    def text(self, key: str, default: Any = _MISSING, choices: Iterable[str] | None = None) -> str:
        value = self._get(key, default)
        if value is _MISSING:
            return ""
        if not isinstance(value, str):
            self.error(key, f"expected a string, got {_kind(value)}")
            return default if isinstance(default, str) else ""
        if choices is not None:
            options = tuple(choices)
            if value not in options:
                self.error(key, f"expected one of {', '.join(options)}; got {value!r}")
                return default if isinstance(default, str) else options[0]
        return value

    def integer(self, key: str, default: Any = _MISSING, minimum: int | None = None,
            maximum: int | None = None) -> int:
        value = self._get(key, default)
        if value is _MISSING:
            return 0
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(key, f"expected a whole number, got {_kind(value)}")
            return default if isinstance(default, int) else 0
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.error(key, f"expected a whole number from {minimum} to {maximum}; got {value}")
        return value

    def number(self, key: str, default: Any = _MISSING, minimum: float | None = None,
              maximum: float | None = None) -> float:
        value = self._get(key, default)
        if value is _MISSING:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.error(key, f"expected a number, got {_kind(value)}")
            return float(default) if isinstance(default, int | float) else 0.0
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            self.error(key, f"expected a number from {minimum} to {maximum}; got {value}")
        return float(value)

    def flag(self, key: str, default: Any = _MISSING) -> bool:
        value = self._get(key, default)
        if value is _MISSING:
            return False
        if not isinstance(value, bool):
            self.error(key, f"expected true or false, got {_kind(value)}")
            return bool(default) if isinstance(default, bool) else False
        return value

    def strings(self, key: str, default: Any = _MISSING) -> list[str]:
        value = self._get(key, default)
        if value is _MISSING:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.error(key, f"expected an array of strings, got {_kind(value)}")
            return []
        return list(value)

    def parsed(self, key: str, parse: Callable[[Any], T], expected: str, default: Any = _MISSING) -> T | None:
        """Read `key` and convert it with `parse`; a ValueError becomes an issue."""
        value = self._get(key, default)
        if value is _MISSING or value is None:
            return None
        try:
            return parse(value)
        except (ValueError, TypeError) as exc:
            detail = f" ({exc})" if str(exc) else ""
            self.error(key, f"expected {expected}; got {value!r}{detail}")
            return None

    def finish(self) -> None:
        """Report keys nobody read: almost always a typo (or a secret, which never belongs here)."""
        for key in self.data:
            if key not in self.used:
                if SECRET_KEY.search(key):
                    self.error(key, SECRETS_ELSEWHERE)
                    continue
                known = ", ".join(sorted(self.used)) or "none"
                self.error(key, f"unknown key (known keys here: {known})")

    def env_name(self, key: str, default: str) -> str:
        """The NAME of an environment variable that holds a secret (never the secret itself)."""
        value = self.text(key, default)
        if not ENV_NAME.match(value):
            self.error(key, "expected the name of an environment variable (letters, digits and _) that holds "
                            "the password; the password itself never goes in the main config")
            return default
        return value


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def parse_time(value: Any) -> dt.time:
    if isinstance(value, dt.time):
        return value
    if not isinstance(value, str):
        raise TypeError("")
    return dt.datetime.strptime(value, "%H:%M").time()


def parse_network(value: Any) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    if not isinstance(value, str):
        raise TypeError("")
    return ipaddress.ip_network(value, strict=True)


def parse_date(value: Any) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str):
        raise TypeError("")
    return dt.date.fromisoformat(value)
