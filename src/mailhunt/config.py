"""``mailhunt.toml``: what the analyst knows about the organization, and tuning.

Everything is optional; a missing file means defaults. Sections this version
does not use yet are accepted and ignored. Invalid TOML, or a known key with a
value of the wrong kind, is an error that names the key.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path


class ConfigError(Exception):
    pass


@dataclass(frozen=True)
class ChangeWindow:
    start: datetime
    end: datetime
    ticket: str | None
    actors: tuple[str, ...]


@dataclass(frozen=True)
class Config:
    path: str | None = None
    domains: tuple[str, ...] = ()
    home_countries: tuple[str, ...] = ()
    trusted_networks: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()
    automation: tuple[dict, ...] = ()
    change_windows: tuple[ChangeWindow, ...] = ()
    exclude_rules: tuple[str, ...] = ()
    bulk_delete_per_hour: int = 50
    export_deletion_window_seconds: int = 24 * 3600
    include_system_accounts: bool = False
    identities: dict[str, str] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str, key: str) -> int:
    match = _DURATION.match(str(text).strip())
    if not match:
        raise ConfigError(f"{key}: '{text}' is not a duration like 30m, 24h or 7d")
    return int(match.group(1)) * _UNIT[match.group(2)]


def _strings(value, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{key}: expected a list of strings")
    return tuple(value)


def _utc(value, key: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigError(f"{key}: '{value}' is not an ISO-8601 time") from exc
    else:
        raise ConfigError(f"{key}: expected an ISO-8601 time with a zone, e.g. 2026-10-03T22:00:00Z")
    if moment.tzinfo is None:
        raise ConfigError(f"{key}: '{value}' has no time zone; write it in UTC with a Z")
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def load_config(path: Path | None) -> Config:
    if path is None:
        return Config()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc

    org = data.get("organization", {})
    authorized = data.get("authorized", {})
    tuning = data.get("tuning", {})
    windows = []
    for index, window in enumerate(data.get("change_windows", [])):
        where = f"change_windows[{index}]"
        if not isinstance(window, dict) or "start" not in window or "end" not in window:
            raise ConfigError(f"{where}: needs start and end")
        start, end = _utc(window["start"], f"{where}.start"), _utc(window["end"], f"{where}.end")
        if end <= start:
            raise ConfigError(f"{where}: end is not after start")
        windows.append(ChangeWindow(start, end, window.get("ticket"),
                                    tuple(a.lower() for a in _strings(window.get("actors", []), f"{where}.actors"))))
    automation = authorized.get("automation", [])
    if not isinstance(automation, list) or not all(isinstance(a, dict) for a in automation):
        raise ConfigError("authorized.automation: expected a list of tables")
    bulk = tuning.get("bulk_delete_per_hour", 50)
    if not isinstance(bulk, int) or bulk < 1:
        raise ConfigError("tuning.bulk_delete_per_hour: expected a positive whole number")
    include_system = tuning.get("include_system_accounts", False)
    if not isinstance(include_system, bool):
        raise ConfigError("tuning.include_system_accounts: expected true or false")
    identities = data.get("identities", {})
    if not isinstance(identities, dict) or not all(isinstance(v, str) for v in identities.values()):
        raise ConfigError('identities: expected logged name = "actor" pairs, e.g. "CORP\\jsmith" = "jsmith@corp.com"')
    return Config(
        path=str(path),
        domains=tuple(d.lower() for d in _strings(org.get("domains", []), "organization.domains")),
        home_countries=tuple(c.upper() for c in _strings(org.get("home_countries", []), "organization.home_countries")),
        trusted_networks=_strings(org.get("trusted_networks", []), "organization.trusted_networks"),
        admins=tuple(a.lower() for a in _strings(authorized.get("admins", []), "authorized.admins")),
        automation=tuple(automation),
        change_windows=tuple(windows),
        exclude_rules=_strings(tuning.get("exclude_rules", []), "tuning.exclude_rules"),
        bulk_delete_per_hour=bulk,
        export_deletion_window_seconds=parse_duration(tuning.get("export_deletion_window", "24h"),
                                                      "tuning.export_deletion_window"),
        include_system_accounts=include_system,
        identities=dict(identities),
        extra={k: v for k, v in data.items()
               if k not in {"organization", "authorized", "tuning", "change_windows", "identities"}},
    )
