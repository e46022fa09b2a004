"""``mailhunt.toml``: what the analyst knows about the organization, and tuning.

Everything is optional; a missing file means defaults. The file is checked
against one schema (``SCHEMA`` below): an unknown section or key anywhere,
including inside an ``[authorized].automation`` entry or a change window, is an
error that names it, because a typo must never silently switch an allowlist
off. Every error names the key and what is wrong with its value.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, datetime
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
class Iocs:
    """Indicators of compromise the analyst already holds; any match is a known threat pattern."""

    ips: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    app_ids: tuple[str, ...] = ()
    user_agents: tuple[str, ...] = ()


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
    baseline_days: int = 30
    require_change_window: bool = False
    timeline_hours: int = 24
    identities: dict[str, str] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    iocs: Iocs = field(default_factory=Iocs)

    def in_trusted_network(self, ip: str | None) -> bool | None:
        """True/False for an address; None when no trusted networks are configured or the address is unusable."""
        if not self.trusted_networks or not ip:
            return None
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return None
        return any(address in ipaddress.ip_network(n, strict=False) for n in self.trusted_networks)


# section -> key -> kind. Kinds: "strings", "string", "time", "duration", "positive_int", "bool",
# "networks", "countries", "regex", "sha256", "mapping", ("tables", {key: kind}).
AUTOMATION_KEYS = {"account": "string", "app_id": "string", "command_pattern": "regex", "script_sha256": "sha256"}
CHANGE_WINDOW_KEYS = {"start": "time", "end": "time", "ticket": "string", "actors": "strings"}
SCHEMA: dict[str, dict | str | tuple[str, dict[str, str]]] = {
    "organization": {"domains": "strings", "home_countries": "countries", "trusted_networks": "networks"},
    "authorized": {"admins": "strings", "automation": ("tables", AUTOMATION_KEYS)},
    "change_windows": ("tables", CHANGE_WINDOW_KEYS),
    "iocs": {"ips": "strings", "domains": "strings", "app_ids": "strings", "user_agents": "strings"},
    "identities": "mapping",
    "tuning": {"exclude_rules": "strings", "bulk_delete_per_hour": "positive_int",
               "export_deletion_window": "duration", "include_system_accounts": "bool",
               "baseline_days": "positive_int", "require_change_window": "bool",
               "timeline_hours": "positive_int"},
}

_DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


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
            moment = datetime.fromisoformat(value)  # Python 3.11+ reads a trailing Z as UTC
        except ValueError as exc:
            raise ConfigError(f"{key}: '{value}' is not an ISO-8601 time") from exc
    else:
        raise ConfigError(f"{key}: expected an ISO-8601 time with a zone, e.g. 2026-10-03T22:00:00Z")
    if moment.tzinfo is None:
        raise ConfigError(f"{key}: '{value}' has no time zone; write it in UTC with a Z")
    return moment.astimezone(UTC).replace(tzinfo=None)


def _unknown(key: str, known) -> ConfigError:
    close = difflib.get_close_matches(key.split(".")[-1], list(known), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else f"; known keys: {', '.join(sorted(known))}"
    return ConfigError(f"{key}: unknown key{hint}")


def _check_value(value, kind, key: str):
    """Validate one value against its kind; returns it normalized."""
    if isinstance(kind, tuple):
        _, keys = kind
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ConfigError(f"{key}: expected a list of tables")
        return [_check_table(entry, keys, f"{key}[{index}]") for index, entry in enumerate(value)]
    if kind == "strings":
        return _strings(value, key)
    if kind == "string":
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{key}: expected a non-empty string")
        return value
    if kind == "time":
        return _utc(value, key)
    if kind == "duration":
        return parse_duration(value, key)
    if kind == "positive_int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key}: expected a positive whole number")
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false")
        return value
    if kind == "countries":
        codes = _strings(value, key)
        bad = [c for c in codes if not _COUNTRY.match(c)]
        if bad:
            raise ConfigError(f"{key}: '{bad[0]}' is not a two-letter ISO 3166 country code")
        return tuple(c.upper() for c in codes)
    if kind == "networks":
        networks = _strings(value, key)
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ConfigError(f"{key}: '{network}' is not an IP network like 203.0.113.0/24") from None
        return networks
    if kind == "regex":
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a regular expression as a string")
        try:
            re.compile(value)
        except re.error as exc:
            raise ConfigError(f"{key}: '{value}' is not a valid regular expression ({exc})") from None
        return value
    if kind == "sha256":
        if not isinstance(value, str) or not _SHA256.match(value):
            raise ConfigError(f"{key}: expected 64 hexadecimal digits (a SHA-256)")
        return value.lower()
    if kind == "mapping":
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise ConfigError(f'{key}: expected logged name = "actor" pairs, e.g. "CORP\\jsmith" = "jsmith@corp.com"')
        return dict(value)
    raise AssertionError(kind)


def _check_table(table: dict, keys: dict, where: str) -> dict:
    checked = {}
    for key, value in table.items():
        if key not in keys:
            raise _unknown(f"{where}.{key}", keys)
        checked[key] = _check_value(value, keys[key], f"{where}.{key}")
    return checked


def _check_document(data: dict) -> dict:
    checked: dict = {}
    for section, value in data.items():
        if section not in SCHEMA:
            raise _unknown(section, SCHEMA)
        kind = SCHEMA[section]
        if isinstance(kind, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{section}: expected a table [{section}]")
            checked[section] = _check_table(value, kind, section)
        else:
            checked[section] = _check_value(value, kind, section)
    return checked


def _automation(entries: list[dict]) -> tuple[dict, ...]:
    for index, entry in enumerate(entries):
        if "account" not in entry and "app_id" not in entry:
            raise ConfigError(f"authorized.automation[{index}]: needs an account or an app_id to recognize it by")
    return tuple({k: (v.lower() if k in ("account", "app_id") else v) for k, v in entry.items()} for entry in entries)


def _change_windows(entries: list[dict]) -> tuple[ChangeWindow, ...]:
    windows = []
    for index, window in enumerate(entries):
        where = f"change_windows[{index}]"
        missing = [k for k in ("start", "end") if k not in window]
        if missing:
            raise ConfigError(f"{where}: needs start and end ({' and '.join(missing)} missing)")
        if window["end"] <= window["start"]:
            raise ConfigError(f"{where}.end: is not after start")
        windows.append(ChangeWindow(window["start"], window["end"], window.get("ticket"),
                                    tuple(a.lower() for a in window.get("actors", ()))))
    return tuple(windows)


def load_config(path: Path | None) -> Config:
    if path is None:
        return Config()
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: is a folder, not a mailhunt.toml file") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except RecursionError as exc:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from exc

    data = _check_document(data)
    org = data.get("organization", {})
    authorized = data.get("authorized", {})
    tuning = data.get("tuning", {})
    iocs = data.get("iocs", {})
    return Config(
        path=str(path),
        domains=tuple(d.lower() for d in org.get("domains", ())),
        home_countries=org.get("home_countries", ()),
        trusted_networks=org.get("trusted_networks", ()),
        admins=tuple(a.lower() for a in authorized.get("admins", ())),
        automation=_automation(authorized.get("automation", [])),
        change_windows=_change_windows(data.get("change_windows", [])),
        exclude_rules=tuning.get("exclude_rules", ()),
        bulk_delete_per_hour=tuning.get("bulk_delete_per_hour", 50),
        export_deletion_window_seconds=tuning.get("export_deletion_window", 24 * 3600),
        include_system_accounts=tuning.get("include_system_accounts", False),
        baseline_days=tuning.get("baseline_days", 30),
        require_change_window=tuning.get("require_change_window", False),
        timeline_hours=tuning.get("timeline_hours", 24),
        identities=data.get("identities", {}),
        iocs=Iocs(ips=iocs.get("ips", ()), domains=tuple(d.lower() for d in iocs.get("domains", ())),
                  app_ids=tuple(a.lower() for a in iocs.get("app_ids", ())),
                  user_agents=iocs.get("user_agents", ())),
    )
