"""Windows event records (the ``{"Event": {"System": ..., "EventData": ...}}`` form) as normalized events.

The EVTX reader, the ``evtx_dump`` JSON reader and the Winlogbeat reader all
hand this module one record at a time as that structure (Winlogbeat documents
are turned into it first). ``map_record`` fills the event columns every record
has (time, channel, record id, computer, provider, event id, SID) and then the
columns of the channel/EventID pairs that matter for mail-clearing hunts:

- ``MSExchange Management`` 1/6: the cmdlet, its parameter text parsed into
  ``params`` exactly as the audit-log reader does, the caller and the process;
- PowerShell 4103/800: the cmdlet and its bound parameters when the pipeline
  ran one cmdlet; 4104: the script block text (reassembled by
  ``ScriptBlockAssembler``);
- Security 4688/4720/4723/4724/4738/1102/4657, System 104, Sysmon 1/11/12/13/14/23/26;
- any System record's numbered insertion strings (Service Control Manager
  7036, 7040 ...) as ``params`` ``param1``, ``param2`` ...

Other records keep the common columns, so third-party Sigma rules on
``EventID``/``Channel`` still see them.
"""

from __future__ import annotations

import re
from datetime import datetime

from mailhunt.events import (
    TimeOutOfRange,
    ZoneMissing,
    event_id_from_record_id,
    new_event,
    out_of_range,
    utc_from_text,
)
from mailhunt.sources.cmdlet_parameters import (
    cmdlet_rule_name,
    cmdlet_target,
    params_by_name,
    parse_parameter_text,
)
from mailhunt.sources.json_values import int64_from_text

DATASET_BY_CHANNEL = {
    "msexchange management": "windows.msexchange_management",
    "microsoft-windows-powershell/operational": "windows.powershell",
    "windows powershell": "windows.powershell",
    "powershellcore/operational": "windows.powershell",
    "security": "windows.security",
    "system": "windows.system",
    "microsoft-windows-sysmon/operational": "windows.sysmon",
}
OTHER_DATASET = "windows.eventlog"
DATASETS = tuple(sorted({*DATASET_BY_CHANNEL.values(), OTHER_DATASET}))

SECURITY_ACTIONS = {
    "4688": "process-created",
    "4720": "user-account-created",
    "4723": "password-change-attempted",
    "4724": "password-reset-attempted",
    "4738": "user-account-changed",
    "1102": "audit-log-cleared",
}
SYSMON_ACTIONS = {
    "1": "process-created",
    "11": "file-created",
    "23": "file-deleted",
    "26": "file-deleted",
}
# Sysmon 12/13/14 name what they did in EventType; event.action keeps Sysmon's word, which Security 4657's
# OperationType is given too (a value created or modified is SetValue, as Sysmon logs both).
SYSMON_REGISTRY_CODES = ("12", "13", "14")
REGISTRY_EVENT_TYPES = ("CreateKey", "DeleteKey", "DeleteValue", "SetValue", "RenameKey")
REGISTRY_OPERATIONS = {"%%1904": "SetValue", "%%1905": "SetValue", "%%1906": "DeleteValue"}
_NUMBERED = re.compile(r"param\d+")
_SYSTEM_SIDS = ("S-1-5-18", "S-1-5-19", "S-1-5-20")


class BadWindowsRecord(Exception):
    """The record lacks what every Windows event has (System, time, EventID)."""


def _text(value) -> str | None:
    """A scalar of the JSON form as text; ``{"#text": x}`` nodes give their text."""
    if isinstance(value, dict):
        value = value.get("#text")
    if value is None:
        return None
    if isinstance(value, list):
        return "\n".join(str(v) for v in value if v is not None)
    return str(value)


def _attribute(node, name: str) -> str | None:
    if isinstance(node, dict):
        attributes = node.get("#attributes")
        if isinstance(attributes, dict) and attributes.get(name) is not None:
            return str(attributes[name])
    return None


def parse_system_time(text: str | None) -> datetime:
    """``SystemTime`` (always UTC in EVTX) as a naive UTC datetime."""
    if not text:
        raise BadWindowsRecord("no TimeCreated SystemTime")
    try:
        return utc_from_text(text)
    except TimeOutOfRange:
        raise BadWindowsRecord(f"TimeCreated: {out_of_range(text)}") from None
    except ZoneMissing:
        raise BadWindowsRecord(f"TimeCreated {text!r} has no time zone") from None
    except ValueError as exc:
        raise BadWindowsRecord(f"TimeCreated {text!r} is not a time") from exc


def event_data(event: dict) -> dict | list:
    """EventData as a name->text map, or as a list when its Data elements are unnamed.

    ``UserData`` (1102, 104) becomes the map of its one inner element.
    Winlogbeat writes unnamed data as ``param1``..``paramN``; that is a list too.
    """
    data = event.get("EventData")
    if data is None and isinstance(event.get("UserData"), dict):
        inner = [v for k, v in event["UserData"].items() if k != "#attributes"]
        data = inner[0] if len(inner) == 1 and isinstance(inner[0], dict) else {}
    if not isinstance(data, dict):
        return {}
    if set(data) <= {"Data", "Binary", "#attributes"} and "Data" in data:
        values = data["Data"]
        if isinstance(values, dict) and "#text" in values:
            values = values["#text"]
        if isinstance(values, list):
            return ["" if v is None else _text(v) or "" for v in values]
        return [] if values is None else [_text(values) or ""]
    named = {k: _text(v) for k, v in data.items() if k != "#attributes"}
    if named and all(re.fullmatch(r"param\d+", k) for k in named):
        return [named[f"param{i}"] or "" for i in range(1, len(named) + 1) if f"param{i}" in named]
    return named


def _named(data: dict | list) -> dict:
    return data if isinstance(data, dict) else {}


def _item(data: dict | list, index: int) -> str | None:
    if isinstance(data, list) and index < len(data):
        return data[index] or None
    return None


def _basename(path: str | None) -> str | None:
    if not path:
        return None
    return re.split(r"[\\/]", path)[-1] or None


INT64_MAX = 2**63 - 1


def _int64(value: int) -> int | None:
    """The value when a 64-bit signed column can hold it; a damaged record can claim any number."""
    return value if 0 <= value <= INT64_MAX else None


def _pid(text: str | None) -> int | None:
    if not text:
        return None
    text = text.strip()
    try:
        return _int64(int(text, 16) if text.lower().startswith("0x") else int(text))
    except ValueError:
        return None


def _account(event: dict, name: str | None, domain: str | None) -> None:
    """ECS style: ``user.name`` is the account name, ``user.domain`` its domain, as two fields."""
    if name and name != "-":
        event["user.name"] = name
        event["user.domain"] = domain if domain and domain != "-" else None


def _user_type(event: dict) -> None:
    name = (event["user.name"] or "").lower()
    domain = (event["user.domain"] or "").lower()
    if event["user.id"] in _SYSTEM_SIDS or name.startswith("nt authority\\") or name.endswith("$") \
            or domain == "nt authority" or name in ("system", "local service", "network service"):
        event["user.type"] = "system"


def cmdlet_fields(action: str, parameter_text: str | None, caller: str | None) -> dict:
    """What a cmdlet's parameter text gives its event: ``params``, ``parameters``, target and rule name.

    Shared by the record-by-record mapping and the SQL one, which calls it
    once per distinct (cmdlet, text, caller).
    """
    fields: dict = {"params": None, "parameters": None}
    if parameter_text:
        fields["parameters"] = parameter_text
        fields["params"] = list(params_by_name(parse_parameter_text(parameter_text)).items())
    params = dict(fields["params"] or [])
    fields["user.target.name"] = cmdlet_target(action, params, caller)
    fields["rule.name"] = cmdlet_rule_name(action, params)
    return fields


def _cmdlet(event: dict, action: str, parameter_text: str | None) -> None:
    event["event.action"] = action
    event.update(cmdlet_fields(action, parameter_text, event["user.name"]))


def _exchange_management(event: dict, code: str, data: dict | list) -> None:
    cmdlet = _item(data, 0)
    if code not in ("1", "6") or not cmdlet:
        return
    event["user.name"] = _item(data, 2)
    event["user.id"] = _item(data, 3) or event["user.id"]
    _cmdlet(event, cmdlet, _item(data, 1))
    event["event.outcome"] = "success" if code == "1" else "failure"
    process = _item(data, 6)
    if process:
        pid, _, name = process.partition(" ")
        if int64_from_text(pid) is not None and name:
            event["process.pid"], event["process.name"] = int64_from_text(pid), name
        else:
            event["process.name"] = process
    client = _item(data, 5)
    if client:
        event["labels"].append(("exchange_client", client))


_INVOCATION = re.compile(r"^CommandInvocation\(([^)]*)\):", re.MULTILINE)
_BINDING = re.compile(r'^ParameterBinding\(([^)]*)\): name="([^"]*)"; value="(.*)"\s*$', re.MULTILINE)
_CONTEXT_LINE = re.compile(r"^\s*([A-Za-z ]+?)\s*=\s*(.*?)\s*$", re.MULTILINE)


def pipeline_fields(details: str | None, user_name: str | None) -> dict:
    """CommandInvocation/ParameterBinding lines (4103 Payload, 800): one cmdlet -> action and params.

    ``commands`` lists the cmdlets invoked; nothing at all when there are no
    details. Shared by the record-by-record mapping and the SQL one, which
    calls it once per distinct (details, user).
    """
    if not details:
        return {}
    invoked = list(dict.fromkeys(_INVOCATION.findall(details)))
    fields: dict = {"commands": ", ".join(invoked)}
    if len(invoked) != 1:
        fields["event.action"] = "pipeline-executed"
        return fields
    bindings = [(name.lower(), value) for command, name, value in _BINDING.findall(details) if command == invoked[0]]
    params = params_by_name(bindings)
    fields.update({
        "event.action": invoked[0],
        "params": list(params.items()) or None,
        "parameters": " ".join(f'-{name} "{value}"' for name, value in bindings) or None,
        "user.target.name": cmdlet_target(invoked[0], params, user_name),
        "rule.name": cmdlet_rule_name(invoked[0], params),
    })
    return fields


def _pipeline_details(event: dict, details: str | None) -> None:
    fields = pipeline_fields(details, event["user.name"])
    if fields:
        event["labels"].append(("commands", fields.pop("commands")))
        event.update(fields)


def _context(text: str | None) -> dict[str, str]:
    """``Key = value`` lines of a 4103 ContextInfo or ``Key=value`` lines of an 800 detail."""
    return {k.strip().lower().replace(" ", ""): v for k, v in _CONTEXT_LINE.findall(text or "")}


def _powershell(event: dict, code: str, data: dict | list) -> None:
    named = _named(data)
    if code == "4104":
        event["event.action"] = "script-block-logged"
        event["powershell.file.script_block_text"] = named.get("ScriptBlockText")
        if named.get("Path"):
            event["file.path"] = named["Path"]
        return
    if code == "4103":
        context = _context(named.get("ContextInfo"))
        if context.get("user"):
            domain, _, name = context["user"].rpartition("\\")
            _account(event, name, domain or None)
        event["process.command_line"] = context.get("hostapplication")
        _pipeline_details(event, named.get("Payload"))
        return
    if code == "800":
        context = _context(_item(data, 1))
        user = context.get("userid")
        if user:
            domain, _, name = user.rpartition("\\")
            _account(event, name, domain or None)
        event["process.command_line"] = context.get("hostapplication")
        _pipeline_details(event, _item(data, 2))


def _security(event: dict, code: str, data: dict | list) -> None:
    named = _named(data)
    event["event.action"] = SECURITY_ACTIONS.get(code)
    if named.get("SubjectUserSid"):
        event["user.id"] = named["SubjectUserSid"]
    _account(event, named.get("SubjectUserName"), named.get("SubjectDomainName"))
    if code == "4688":
        event["process.executable"] = named.get("NewProcessName")
        event["process.name"] = _basename(named.get("NewProcessName"))
        event["process.pid"] = _pid(named.get("NewProcessId"))
        event["process.command_line"] = named.get("CommandLine")
        event["process.parent.executable"] = named.get("ParentProcessName")
        event["process.parent.name"] = _basename(named.get("ParentProcessName"))
    elif code == "4657":
        _registry_value_change(event, named)
    elif code in ("4720", "4723", "4724", "4738"):
        target = named.get("TargetUserName")
        domain = named.get("TargetDomainName")
        event["user.target.name"] = f"{domain}\\{target}" if target and domain and domain != "-" else target


def _registry_value_change(event: dict, named: dict) -> None:
    """Security 4657: the value's path (key and value name, as Sysmon's TargetObject has it) and new data."""
    key, value = named.get("ObjectName"), named.get("ObjectValueName")
    event["event.action"] = REGISTRY_OPERATIONS.get(named.get("OperationType") or "")
    event["registry.path"] = f"{key}\\{value}" if key and value else key or None
    event["registry.data.strings"] = named.get("NewValue")


def numbered_insertion_strings(event_node: dict, data: dict | list) -> list[tuple[str, str | None]] | None:
    """A record's numbered insertion strings as ``param1``, ``param2`` ...: the ``paramN`` members of its
    EventData (named so by the EVTX, or by Winlogbeat for unnamed data), else its unnamed Data items in
    order; None when it has neither."""
    raw = event_node.get("EventData")
    if not isinstance(raw, dict):
        return None
    named = [(k, _text(v)) for k, v in raw.items() if _NUMBERED.fullmatch(k)]
    if isinstance(data, list) and not named:
        return [(f"param{number}", value) for number, value in enumerate(data, start=1)] or None
    return named or None


def _system(event: dict, code: str, data: dict | list, event_node: dict) -> None:
    named = _named(data)
    event["params"] = numbered_insertion_strings(event_node, data)
    if code == "104" and "eventlog" in (event["event.provider"] or "").lower():
        event["event.action"] = "log-cleared"
        _account(event, named.get("SubjectUserName"), named.get("SubjectDomainName"))
        if named.get("Channel"):
            event["labels"].append(("cleared_channel", named["Channel"]))


def _sysmon(event: dict, code: str, data: dict | list) -> None:
    named = _named(data)
    event["event.action"] = SYSMON_ACTIONS.get(code)
    event["user.id"] = None  # System.Security names the Sysmon service, not the actor; EventData.User does
    image = named.get("Image")
    event["process.executable"] = image
    event["process.name"] = _basename(image)
    event["process.pid"] = _pid(named.get("ProcessId"))
    user = named.get("User")
    if user:
        domain, _, name = user.rpartition("\\")
        _account(event, name, domain or None)
    if code == "1":
        event["process.command_line"] = named.get("CommandLine")
        event["process.parent.executable"] = named.get("ParentImage")
        event["process.parent.name"] = _basename(named.get("ParentImage"))
        event["process.parent.command_line"] = named.get("ParentCommandLine")
    elif code in ("11", "23", "26"):
        event["file.path"] = named.get("TargetFilename")
    elif code in SYSMON_REGISTRY_CODES:
        event_type = named.get("EventType")
        event["event.action"] = event_type if event_type in REGISTRY_EVENT_TYPES else None
        event["registry.path"] = named.get("TargetObject")
        event["registry.data.strings"] = named.get("Details")


CHANNEL_MAPPERS = {
    "windows.msexchange_management": _exchange_management,
    "windows.powershell": _powershell,
    "windows.security": _security,
    "windows.sysmon": _sysmon,
}


def map_record(record: object) -> tuple[dict, dict | list]:
    """The event of one ``{"Event": ...}`` record (without provenance) and its EventData.

    Raises BadWindowsRecord when the record is not a Windows event.
    """
    event_node = record.get("Event") if isinstance(record, dict) else None
    if not isinstance(event_node, dict):
        raise BadWindowsRecord("no Event.System element")
    system = event_node.get("System")
    if not isinstance(system, dict):
        raise BadWindowsRecord("no Event.System element")
    code = _text(system.get("EventID"))
    if code is None:
        raise BadWindowsRecord("no EventID")
    timestamp = parse_system_time(_attribute(system.get("TimeCreated"), "SystemTime")
                                  or _text(system.get("TimeCreated")))
    channel = _text(system.get("Channel")) or ""
    computer = _text(system.get("Computer")) or ""
    record_id = _text(system.get("EventRecordID"))
    event = new_event()
    dataset = DATASET_BY_CHANNEL.get(channel.lower(), OTHER_DATASET)
    event["@timestamp"] = timestamp
    event["event.code"] = code
    event["event.dataset"] = dataset
    event["event.provider"] = _attribute(system.get("Provider"), "Name")
    event["event.outcome"] = "unknown"
    event["host.name"] = computer or None
    event["winlog.channel"] = channel or None
    event["winlog.record_id"] = int64_from_text(record_id)
    event["user.id"] = _attribute(system.get("Security"), "UserID")
    event["labels"] = []
    data = event_data(event_node)
    if dataset == "windows.system":
        _system(event, code, data, event_node)
    else:
        mapper = CHANNEL_MAPPERS.get(dataset)
        if mapper:
            mapper(event, code, data)
    _user_type(event)
    if event["winlog.record_id"] is not None:
        event["event.id"] = event_id_from_record_id(f"windows.{computer.lower()}.{channel.lower()}",
                                                    str(event["winlog.record_id"]))
    return event, data
