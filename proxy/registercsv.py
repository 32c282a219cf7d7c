"""Importing the register from the school's MIS export (CSV).

Headings are matched case-insensitively under their common spellings
(`username`/`user`/`login`, `full name`/`name`, `role`/`type`, `group`/
`filter_group`, `year`/`year_group`, `consent`/`parental_consent`...).

An import is idempotent: a row equal to the register changes nothing and writes
no audit row; a changed row is updated and audited; a new one added and audited.
Bad rows are reported with their line number and reason and the rest imported.
An import never touches a user's ban or revocation (those are set with the CLI)
and never deletes anyone: people missing from the file are listed in the report.
"""
from __future__ import annotations

import csv
import io
import ipaddress
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiosqlite

from proxy.audit import audit
from proxy.db import transaction, utc_iso
from proxy.register import (
    DEVICE_CLASSES,
    DEVICE_COLUMNS_SQL,
    USER_COLUMNS_SQL,
    device_from_row,
    normalise_mac,
    user_from_row,
)

logger = logging.getLogger(__name__)

USER_HEADINGS = {
    "username": ("username", "user", "login", "user_name", "login_name"),
    "full_name": ("full_name", "name", "fullname", "display_name"),
    "role": ("role", "type", "user_type"),
    "group": ("group", "filter_group", "group_name"),
    "year_group": ("year", "year_group", "yeargroup"),
    "consent": ("consent", "parental_consent", "internet_consent"),
}
DEVICE_HEADINGS = {
    "name": ("name", "device", "device_name", "hostname"),
    "mac": ("mac", "mac_address", "macaddress"),
    "network": ("ip", "network", "cidr", "ip_address", "ip_or_cidr", "address", "subnet"),
    "device_class": ("device_class", "class", "type"),
    "assigned_user": ("assigned_user", "user", "username", "owner", "assigned_to"),
}
ROLE_WORDS = {"pupil": "pupil", "student": "pupil", "staff": "staff", "teacher": "staff",
              "volunteer": "volunteer", "visitor": "visitor", "guest": "visitor"}
YES = {"yes", "y", "true", "1"}
NO = {"no", "n", "false", "0", ""}


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    not_in_file: list[str] = field(default_factory=list)  # in the register, not in this file


class _Reject(Exception):
    pass


def _key(heading: str) -> str:
    return re.sub(r"[\s_\-]+", "_", heading.strip().lower())


def _read(path: Path, headings: dict[str, tuple[str, ...]]
          ) -> tuple[dict[str, int], list[tuple[int, list[str]]]]:
    """(field -> column index, [(line number, cells)]) of a CSV file."""
    text = Path(path).read_text(encoding="utf-8-sig")
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)  # MIS exports use commas, semicolons or tabs
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(reader, [])
    columns: dict[str, int] = {}
    for index, heading in enumerate(header):
        for name, spellings in headings.items():
            if _key(heading) in spellings and name not in columns:
                columns[name] = index
    rows = [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    return columns, rows


def _cell(row: list[str], columns: dict[str, int], name: str) -> str:
    index = columns.get(name)
    return row[index].strip() if index is not None and index < len(row) else ""


def _missing(columns: dict[str, int], required: tuple[str, ...],
             headings: dict[str, tuple[str, ...]]) -> str | None:
    for name in required:
        if name not in columns:
            return f"missing required column {name!r} (accepted headings: {', '.join(headings[name])})"
    return None


def derive_group(role: str, year: str, known: set[str] | None) -> str | None:
    """The default filter group when the file has none: KS1 for Reception-Year 2,
    KS2 for Years 3-6, staff for staff and volunteers, guest for visitors."""
    group: str | None = None
    if role in ("staff", "volunteer"):
        group = "staff"
    elif role == "visitor":
        group = "guest"
    else:
        match = re.search(r"\d+", year)
        if re.fullmatch(r"(?i)\s*(r|rec|reception|nursery|eyfs)\s*", year):
            group = "ks1"
        elif match is not None and 1 <= int(match[0]) <= 6:
            group = "ks1" if int(match[0]) <= 2 else "ks2"
    return group if group is not None and (known is None or group in known) else None


def _user_values(row: list[str], columns: dict[str, int], known: set[str] | None
                 ) -> dict[str, Any]:
    username = _cell(row, columns, "username")
    if not username:
        raise _Reject("missing username")
    role_text = _cell(row, columns, "role")
    role = ROLE_WORDS.get(role_text.lower())
    if role is None:
        raise _Reject(f"bad role {role_text!r} (pupil, staff, volunteer or visitor)")
    year = _cell(row, columns, "year_group")
    group = _cell(row, columns, "group")
    if group:
        if known is not None and group not in known:
            raise _Reject(f"unknown group {group!r} (known: {', '.join(sorted(known))})")
    else:
        derived = derive_group(role, year, known)
        if derived is None:
            raise _Reject(f"no group given for {username!r} and none follows from role/year")
        group = derived
    values: dict[str, Any] = {"username": username, "full_name": _cell(row, columns, "full_name"),
                              "role": role, "group_name": group, "year_group": year}
    if "consent" in columns:
        consent = _cell(row, columns, "consent").lower()
        if consent not in YES and consent not in NO:
            raise _Reject(f"bad consent value {consent!r} (yes/no, y/n, true/false, 1/0)")
        values["consent"] = int(consent in YES)
    return values


def _network(text: str) -> str:
    if not text:
        return ""
    try:
        if "/" in text:
            return str(ipaddress.ip_network(text, strict=True))
        return str(ipaddress.ip_address(text))
    except ValueError as exc:
        raise _Reject(f"bad IP/CIDR {text!r} ({exc})") from None


def _device_values(row: list[str], columns: dict[str, int], users: set[str]) -> dict[str, Any]:
    name = _cell(row, columns, "name")
    if not name:
        raise _Reject("missing device name")
    class_text = _cell(row, columns, "device_class")
    device_class = re.sub(r"[\s\-]+", "_", class_text.lower())
    if device_class not in DEVICE_CLASSES:
        raise _Reject(f"unknown device class {class_text!r} ({', '.join(DEVICE_CLASSES)})")
    mac_text = _cell(row, columns, "mac")
    mac = normalise_mac(mac_text) if mac_text else None
    if mac_text and mac is None:
        raise _Reject(f"bad MAC {mac_text!r}")
    network = _network(_cell(row, columns, "network"))
    if mac is None and not network:
        raise _Reject(f"device {name!r} has neither a MAC nor an IP/CIDR")
    assigned = _cell(row, columns, "assigned_user") or None
    if assigned is not None and assigned not in users:
        raise _Reject(f"assigned user {assigned!r} is not in the register (import users first)")
    return {"name": name, "mac": mac, "network": network, "device_class": device_class,
            "assigned_user": assigned}


async def _import(conn: aiosqlite.Connection, path: Path, *, by: str, now: datetime | None,
                  spec: _Spec, parse: Callable[[list[str], dict[str, int]], dict[str, Any]],
                  ) -> ImportReport:
    if not by.strip():
        raise ValueError("say who imports the file (by=...): it goes on the audit trail")
    now = now or datetime.now(UTC)
    stamp = utc_iso(now)
    report = ImportReport()
    columns, rows = _read(path, spec.headings)
    problem = _missing(columns, spec.required, spec.headings)
    if problem is not None:
        report.rejected.append((1, problem))
        logger.warning("%s: %s; nothing imported", path, problem)
        return report
    reason = f"import of {Path(path).name}"
    key, kind = spec.key, spec.kind
    seen: dict[str, int] = {}
    async with transaction(conn):
        async with conn.execute(spec.select) as cursor:
            existing = {values[key]: values for values in map(spec.existing, await cursor.fetchall())}
        for line, row in rows:
            try:
                values = parse(row, columns)
                if values[key] in seen:
                    raise _Reject(f"duplicate {key} {values[key]!r} (first on line {seen[values[key]]})")
            except _Reject as exc:
                report.rejected.append((line, str(exc)))
                continue
            seen[values[key]] = line
            old = existing.get(values[key])
            subject = f"{kind}:{values[key]}"
            if old is None:
                values.update(spec.extra(values, stamp))
                cols = [*values, "created_at", "updated_at"]
                marks = ", ".join("?" for _ in cols)
                await conn.execute(f"INSERT INTO {spec.table} ({', '.join(cols)}) VALUES ({marks})",
                                   (*values.values(), stamp, stamp))
                await audit(conn, actor=by, action=f"{kind}.import_add", subject=subject,
                            details={"after": values}, reason=reason, now=now)
                report.added += 1
                continue
            changed = {k: v for k, v in values.items() if old.get(k) != v}
            if not changed:
                report.unchanged += 1
                continue
            changed.update(spec.extra(changed, stamp))
            sets = ", ".join(f"{k} = ?" for k in changed)
            await conn.execute(f"UPDATE {spec.table} SET {sets}, updated_at = ? WHERE {key} = ?",
                               (*changed.values(), stamp, values[key]))
            await audit(conn, actor=by, action=f"{kind}.import_update", subject=subject,
                        details={"before": {k: old.get(k) for k in changed}, "after": changed},
                        reason=reason, now=now)
            report.updated += 1
    report.not_in_file = sorted(set(existing) - set(seen))
    logger.info("%s: %d added, %d updated, %d unchanged, %d rejected", path, report.added,
                report.updated, report.unchanged, len(report.rejected))
    return report


@dataclass(frozen=True)
class _Spec:
    headings: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    table: str
    key: str
    kind: str
    select: str
    existing: Callable[[Any], dict[str, Any]]
    extra: Callable[[dict[str, Any], str], dict[str, Any]] = lambda values, stamp: {}


def _user_existing(row: Any) -> dict[str, Any]:
    user = user_from_row(row)
    return {"username": user.username, "full_name": user.full_name, "role": user.role,
            "group_name": user.group_name, "year_group": user.year_group,
            "consent": int(user.consent)}


def _consent_at(values: dict[str, Any], stamp: str) -> dict[str, Any]:
    """`consent_at` follows a change of the consent flag."""
    if "consent" not in values:
        return {}
    return {"consent_at": stamp if values["consent"] else None}


def _device_existing(row: Any) -> dict[str, Any]:
    device = device_from_row(row)
    return {"name": device.name, "mac": device.mac, "network": device.network,
            "device_class": device.device_class, "assigned_user": device.assigned_user}


_USERS = _Spec(USER_HEADINGS, ("username", "role"), "users", "username", "user",
               f"SELECT {USER_COLUMNS_SQL} FROM users", _user_existing, _consent_at)
_DEVICES = _Spec(DEVICE_HEADINGS, ("name", "device_class"), "devices", "name", "device",
                 f"SELECT {DEVICE_COLUMNS_SQL} FROM devices", _device_existing)


async def import_users_csv(conn: aiosqlite.Connection, path: Path, by: str, *,
                           known_groups: set[str] | None = None,
                           now: datetime | None = None) -> ImportReport:
    """Import users: username, full name, role, group (or year group), parental consent.

    `known_groups` (the config's group names) limits the groups a user may be in.
    """
    def parse(row: list[str], columns: dict[str, int]) -> dict[str, Any]:
        return _user_values(row, columns, known_groups)

    return await _import(conn, path, by=by, now=now, spec=_USERS, parse=parse)


async def import_devices_csv(conn: aiosqlite.Connection, path: Path, by: str, *,
                             now: datetime | None = None) -> ImportReport:
    """Import devices: name, MAC, IP or CIDR, device class, assigned user."""
    async with conn.execute("SELECT username FROM users") as cursor:
        users = {row[0] for row in await cursor.fetchall()}
    columns, _rows = _read(path, DEVICE_HEADINGS)
    if columns and "mac" not in columns and "network" not in columns:
        report = ImportReport(rejected=[(1, "missing required column: a MAC or an IP/CIDR column "
                                            "(headings: mac, ip, network, cidr)")])
        return report

    def parse(row: list[str], columns: dict[str, int]) -> dict[str, Any]:
        return _device_values(row, columns, users)

    return await _import(conn, path, by=by, now=now, spec=_DEVICES, parse=parse)
