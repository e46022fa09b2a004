"""Windows event records to normalized events a batch at a time, in SQL.

The EVTX parser hands over each record as JSON text; parsing and mapping them
one by one in Python would cost several times what the parser itself takes.
So records are mapped by DuckDB from the JSON text in one multi-path
extraction per record. The SQL gives the same columns as
``windows_events.map_record`` (tests compare the two on every public sample
and on variants of the cmdlet and PowerShell records).

``MSExchange Management`` cmdlet records and PowerShell 4103/800 carry text
that only ``windows_events`` parses (cmdlet parameter text, CommandInvocation
and ParameterBinding lines): the SQL takes the positional Data items and the
``Key = value`` context lines apart, and ``windows_events.cmdlet_fields`` /
``pipeline_fields`` map each distinct text of the batch once (``text_fields``),
joined back in SQL. Records that still need Python are flagged
``needs_python`` and mapped there by the caller:

- 4104 parts of a script block logged in several records (reassembled),
- cmdlet and PowerShell records in a shape the SQL does not take apart the
  same way (EventData that is not a list of text items or named text fields,
  whitespace that Python's patterns treat differently from DuckDB's),
- anything the SQL cannot read (invalid JSON, no time, no EventID): Python
  rejects it with its reason.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mailhunt import memory
from mailhunt.events import SCHEMA, sql_utc_time
from mailhunt.sources.windows_events import (
    DATASET_BY_CHANNEL,
    OTHER_DATASET,
    REGISTRY_EVENT_TYPES,
    REGISTRY_OPERATIONS,
    SECURITY_ACTIONS,
    SYSMON_ACTIONS,
    SYSMON_REGISTRY_CODES,
    cmdlet_fields,
    pipeline_fields,
)
from mailhunt.sql_text import sql_list, sql_string

# Where each field sits in the record, each read as text in one multi-path
# extraction per record. A member that is an object comes as its JSON text
# (EventID is ``4104`` or ``{"#attributes": ..., "#text": 6}``).
_PATHS = {
    "channel": ("System", "Channel"),
    "computer": ("System", "Computer"),
    "event_id": ("System", "EventID"),
    "provider": ("System", "Provider", "#attributes", "Name"),
    "system_time": ("System", "TimeCreated", "#attributes", "SystemTime"),
    "record_id": ("System", "EventRecordID"),
    "security_sid": ("System", "Security", "#attributes", "UserID"),
    "message_total": ("EventData", "MessageTotal"),
    "script_block_id": ("EventData", "ScriptBlockId"),
    "script_block_text": ("EventData", "ScriptBlockText"),
    "script_path": ("EventData", "Path"),
    "subject_sid": ("EventData", "SubjectUserSid"),
    "subject_name": ("EventData", "SubjectUserName"),
    "subject_domain": ("EventData", "SubjectDomainName"),
    "cleared_sid": ("UserData", "LogFileCleared", "SubjectUserSid"),
    "cleared_name": ("UserData", "LogFileCleared", "SubjectUserName"),
    "cleared_domain": ("UserData", "LogFileCleared", "SubjectDomainName"),
    "cleared_channel": ("UserData", "LogFileCleared", "Channel"),
    "target_name": ("EventData", "TargetUserName"),
    "target_domain": ("EventData", "TargetDomainName"),
    "new_process_name": ("EventData", "NewProcessName"),
    "new_process_id": ("EventData", "NewProcessId"),
    "command_line": ("EventData", "CommandLine"),
    "parent_process_name": ("EventData", "ParentProcessName"),
    "image": ("EventData", "Image"),
    "process_id": ("EventData", "ProcessId"),
    "parent_image": ("EventData", "ParentImage"),
    "parent_command_line": ("EventData", "ParentCommandLine"),
    "sysmon_user": ("EventData", "User"),
    "target_filename": ("EventData", "TargetFilename"),
    "target_object": ("EventData", "TargetObject"),
    "details": ("EventData", "Details"),
    "event_type": ("EventData", "EventType"),
    "object_name": ("EventData", "ObjectName"),
    "object_value_name": ("EventData", "ObjectValueName"),
    "new_value": ("EventData", "NewValue"),
    "operation_type": ("EventData", "OperationType"),
}


def _json_path(path: tuple[str, ...]) -> str:
    return "$.Event." + ".".join('"' + key.replace('"', '\\"') + '"' for key in path)


def _v(name: str) -> str:
    return f"f_{name}"


def _flatten() -> str:
    """Each extracted value under its name (DuckDB lists count from 1)."""
    return ",\n         ".join(f"v[{index}] AS {_v(name)}" for index, name in enumerate(_PATHS, start=1))


def _case_map(expression: str, mapping: dict[str, str]) -> str:
    whens = " ".join(f"WHEN {sql_string(k)} THEN {sql_string(v)}" for k, v in mapping.items())
    return f"CASE {expression} {whens} END"


def _basename(expression: str) -> str:
    return f"nullif(regexp_extract({expression}, '[^\\\\/]*$'), '')"


def _pid(expression: str) -> str:
    return f"TRY_CAST(trim({expression}) AS BIGINT)"


# The objects holding the fields the mapping reads, checked for a key named twice (_REPEATING_LAYOUTS_SQL).
_OBJECTS = (("System",), ("System", "TimeCreated", "#attributes"), ("EventData",), ("UserData", "LogFileCleared"))
_OBJECT_PATHS = "[" + ", ".join(sql_string(_json_path(path)) for path in _OBJECTS) + "]"
_PATH_LIST = "[" + ", ".join(sql_string(_json_path(path)) for path in _PATHS.values()) + "]"

# Python's ``\s`` (the context-line pattern below, as ``windows_events`` uses it) also matches these; RE2's
# does not, so a text holding one is left to Python.
_PY_ONLY_SPACE = "[\x0b\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
_CONTEXT_LINE = "(?m)^\\s*([A-Za-z ]+?)\\s*=\\s*(.*?)\\s*$"


def _context_value(key: str) -> str:
    """The value of the last context line whose key, without spaces, is the SQL expression ``key``."""
    return f"ctx_values[len(ctx_keys) + 1 - list_position(list_reverse(ctx_keys), {key})]"


# SystemTime as a UTC time; a value outside what @timestamp holds (or text only DuckDB reads as a time,
# 'epoch') leaves ts empty, so the record goes to Python, which rejects it with its reason.
_SYSTEM_TIME = (f"CASE WHEN left(ltrim({_v('system_time')}), 1) BETWEEN '0' AND '9' THEN TRY_CAST(TRY_CAST("
                f"replace({_v('system_time')}, ' ', 'T') AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP) END")


def _account_name(text: str) -> str:
    """``_account`` of a ``DOMAIN\\name`` text: the name after the last backslash, unless empty or ``-``."""
    name = f"regexp_extract({text}, '[^\\\\]*$')"
    return f"CASE WHEN {name} NOT IN ('', '-') THEN {name} END"


def _account_domain(text: str) -> str:
    domain = f"CASE WHEN contains({text}, '\\') THEN regexp_extract({text}, '^(.*)\\\\[^\\\\]*$', 1) END"
    return f"CASE WHEN {_account_name(text)} IS NOT NULL AND {domain} NOT IN ('', '-') THEN {domain} END"


_FIELDS_SQL = f"""
WITH parsed AS (
  SELECT row_index, raw, TRY(json_extract_string(raw, {_PATH_LIST})) AS v,
         CASE WHEN v IS NOT NULL THEN hash(json_keys(raw, {_OBJECT_PATHS})) END AS layout
  FROM stage
), extracted AS (
  SELECT row_index, raw, v IS NOT NULL AS valid, layout,
         {_flatten()}
  FROM parsed
), fields AS (
  SELECT *,
    coalesce({_v('channel')}, '') AS channel,
    coalesce({_v('computer')}, '') AS computer,
    CASE WHEN starts_with({_v('event_id')}, '{{') THEN TRY(json_extract_string({_v('event_id')}, '$."#text"'))
         ELSE {_v('event_id')} END AS code,
    TRY_CAST({_v('record_id')} AS BIGINT) AS record_id,
    {sql_utc_time(_SYSTEM_TIME)} AS ts,
    {_case_map(f"lower(coalesce({_v('channel')}, ''))", DATASET_BY_CHANNEL)} AS known_dataset
  FROM extracted
), typed AS (
  SELECT *, coalesce(known_dataset, {sql_string(OTHER_DATASET)}) AS dataset FROM fields
), with_event_data AS (
  -- EventData of the records whose text fields Python's windows_events maps: MSExchange Management
  -- cmdlets and PowerShell 800 hold a list of Data items, PowerShell 4103 named fields, System records
  -- their numbered insertion strings.
  SELECT *,
    CASE WHEN dataset IN ('windows.msexchange_management', 'windows.system')
              OR (dataset = 'windows.powershell' AND code IN ('4103', '800'))
         THEN TRY(json_extract(raw, '$.Event.EventData')) END AS ed
  FROM typed
), data_items AS (
  SELECT *,
    coalesce(json_type(ed) = 'OBJECT' AND list_has_all(['Data', 'Binary', '#attributes'], json_keys(ed))
             AND list_contains(json_keys(ed), 'Data'), false) AS data_shaped,
    CASE WHEN data_shaped
         THEN CASE WHEN json_type(ed->'Data') = 'OBJECT' THEN ed->'Data'->'#text' ELSE ed->'Data' END END AS data_node,
    CASE WHEN dataset = 'windows.system' AND json_type(ed) = 'OBJECT'
         THEN list_filter(json_keys(ed), lambda k: regexp_full_match(k, 'param[0-9]+')) END AS numbered_keys
  FROM with_event_data
), shaped AS (
  SELECT * EXCLUDE (raw, ed, data_node, numbered_keys),
    -- a System record's numbered insertion strings (windows_events.numbered_insertion_strings)
    CASE WHEN len(numbered_keys) > 0
         THEN MAP(numbered_keys, list_transform(numbered_keys, lambda k: json_extract_string(ed, '$.' || k))) END
      AS numbered_named,
    coalesce(len(numbered_keys) > 0 AND NOT list_bool_and(list_transform(numbered_keys,
             lambda k: json_type(ed, '$.' || k) IN ('VARCHAR', 'NULL'))), false) AS numbered_not_text,
    CASE WHEN json_type(data_node) = 'ARRAY'
              AND list_bool_and(list_transform(json_extract(data_node, '$[*]'),
                                               lambda x: json_type(x) IN ('VARCHAR', 'NULL')))
         THEN list_transform(json_extract_string(data_node, '$[*]'), lambda x: coalesce(x, '')) END AS items,
    coalesce(json_type(ed) = 'OBJECT' AND NOT list_contains(json_keys(ed), 'Data')
             AND NOT list_bool_and(list_transform(json_keys(ed), lambda k: regexp_full_match(k, 'param\\d+|#attributes')))
             AND coalesce(json_type(ed->'ContextInfo'), 'NULL') IN ('VARCHAR', 'NULL')
             AND coalesce(json_type(ed->'Payload'), 'NULL') IN ('VARCHAR', 'NULL'), false) AS named_texts,
    CASE WHEN json_type(ed) = 'OBJECT' THEN ed->>'ContextInfo' END AS context_info,
    CASE WHEN json_type(ed) = 'OBJECT' THEN ed->>'Payload' END AS payload
  FROM data_items
), texts AS (
  SELECT *,
    coalesce(dataset = 'windows.msexchange_management' AND code IN ('1', '6') AND items[1] <> '', false) AS is_cmdlet,
    CASE WHEN dataset = 'windows.powershell' AND code = '4103' AND named_texts THEN context_info
         WHEN dataset = 'windows.powershell' AND code = '800' AND items IS NOT NULL THEN nullif(items[2], '') END
      AS ps_context,
    CASE WHEN dataset = 'windows.powershell' AND code = '4103' AND named_texts THEN payload
         WHEN dataset = 'windows.powershell' AND code = '800' AND items IS NOT NULL THEN nullif(items[3], '') END
      AS ps_details
  FROM shaped
), context_lines AS (
  SELECT *,
    list_transform(regexp_extract_all(ps_context, '{_CONTEXT_LINE}', 1), lambda k: replace(lower(trim(k)), ' ', ''))
      AS ctx_keys,
    regexp_extract_all(ps_context, '{_CONTEXT_LINE}', 2) AS ctx_values
  FROM texts
), contexts AS (
  SELECT * EXCLUDE (ctx_keys, ctx_values),
    {_context_value("CASE code WHEN '4103' THEN 'user' ELSE 'userid' END")} AS ps_user_text,
    {_context_value("'hostapplication'")} AS ctx_host_application,
    CASE WHEN is_cmdlet THEN split_part(items[7], ' ', 1) END AS cmdlet_pid,
    CASE WHEN is_cmdlet AND contains(items[7], ' ') THEN substr(items[7], strpos(items[7], ' ') + 1) END
      AS cmdlet_process_name
  FROM context_lines
), mapped AS (
  SELECT *,
    CASE
      WHEN dataset = 'windows.security' THEN
        struct_pack(name := nullif(nullif(coalesce({_v('subject_name')}, {_v('cleared_name')}), '-'), ''),
                    domain := nullif(nullif(coalesce({_v('subject_domain')}, {_v('cleared_domain')}), '-'), ''))
      WHEN dataset = 'windows.system' AND code = '104' AND contains(lower(coalesce({_v('provider')}, '')), 'eventlog') THEN
        struct_pack(name := nullif(nullif({_v('cleared_name')}, '-'), ''),
                    domain := nullif(nullif({_v('cleared_domain')}, '-'), ''))
      WHEN is_cmdlet THEN struct_pack(name := nullif(items[3], ''), domain := CAST(NULL AS VARCHAR))
      WHEN dataset = 'windows.powershell' AND nullif(ps_user_text, '') IS NOT NULL THEN
        struct_pack(name := {_account_name('ps_user_text')}, domain := {_account_domain('ps_user_text')})
      WHEN dataset = 'windows.sysmon' AND nullif({_v('sysmon_user')}, '') IS NOT NULL THEN
        struct_pack(name := {_account_name(_v('sysmon_user'))}, domain := {_account_domain(_v('sysmon_user'))})
    END AS account,
    CASE
      WHEN dataset = 'windows.sysmon' THEN NULL
      WHEN dataset = 'windows.security' AND nullif(coalesce({_v('subject_sid')}, {_v('cleared_sid')}), '') IS NOT NULL
        THEN coalesce({_v('subject_sid')}, {_v('cleared_sid')})
      WHEN is_cmdlet AND nullif(items[4], '') IS NOT NULL THEN items[4]
      ELSE {_v('security_sid')}
    END AS user_id,
    -- what the SQL cannot map as windows_events does: those records go to Python
    NOT valid OR ts IS NULL OR code IS NULL OR record_id IS NULL
      OR (dataset = 'windows.msexchange_management' AND items IS NULL)
      OR (is_cmdlet AND regexp_matches(coalesce(items[7], ''), '[^\x00-\x7f]'))
      OR (dataset = 'windows.powershell' AND code = '4103' AND NOT named_texts)
      OR (dataset = 'windows.system' AND (numbered_not_text OR (numbered_named IS NULL AND data_shaped AND items IS NULL)))
      OR (dataset = 'windows.powershell' AND code = '800' AND items IS NULL)
      OR regexp_matches(coalesce(ps_context, ''), '{_PY_ONLY_SPACE}')
      OR (dataset = 'windows.powershell' AND code = '4104' AND coalesce(TRY_CAST({_v('message_total')} AS BIGINT), 1) > 1
          AND nullif({_v('script_block_id')}, '') IS NOT NULL) AS unmappable
  FROM contexts
)
SELECT *,
  CASE WHEN is_cmdlet THEN 'cmdlet' WHEN ps_details <> '' THEN 'pipeline' END AS text_kind,
  CASE WHEN is_cmdlet THEN items[1] END AS text_action,
  CASE WHEN is_cmdlet THEN nullif(items[2], '') ELSE nullif(ps_details, '') END AS text_value
FROM mapped
"""

# Records naming a key twice in one of the objects the mapping reads go to Python, which reads the
# last value (as jq and orjson do; DuckDB's JSON functions read the first) and marks them. One
# record of each layout (the hash of those objects' key lists) is checked, then all of a layout
# that repeats a key.
_REPEATING_LAYOUTS_SQL = f"""
SELECT l.layout FROM (SELECT layout, min(row_index) AS sample FROM fields WHERE layout IS NOT NULL GROUP BY layout) l
JOIN stage s ON s.row_index = l.sample
WHERE TRY(list_bool_or(list_transform(json_keys(s.raw, {_OBJECT_PATHS}), lambda k: len(k) <> list_unique(k))))
"""

# The cmdlet and pipeline texts each distinct record needs mapped by windows_events' own functions.
_TEXT_KEYS_SQL = """
SELECT DISTINCT text_kind, text_action, text_value, account.name
FROM fields WHERE text_kind IS NOT NULL AND NOT unmappable
"""

TEXT_FIELDS_SCHEMA = pa.schema([
    ("kind", pa.string()), ("action", pa.string()), ("text", pa.string()), ("user_name", pa.string()),
    ("t_action", pa.string()), ("t_params", pa.map_(pa.string(), pa.string())), ("t_parameters", pa.string()),
    ("t_target", pa.string()), ("t_rule", pa.string()), ("t_commands", pa.string()),
])

_EVENTS_SQL = f"""
WITH mapped AS (
  SELECT f.*, t.t_action, t.t_params, t.t_parameters, t.t_target, t.t_rule, t.t_commands
  FROM fields f LEFT JOIN text_fields t
    ON t.kind = f.text_kind AND t.action IS NOT DISTINCT FROM f.text_action
       AND t.text IS NOT DISTINCT FROM f.text_value AND t.user_name IS NOT DISTINCT FROM f.account.name
)
SELECT
  row_index,
  unmappable AS needs_python,
  substr(sha256('windows.' || lower(computer) || '.' || lower(channel) || chr(31) || CAST(record_id AS VARCHAR)), 1, 32)
    AS "event.id",
  ts AS "@timestamp",
  CASE
    WHEN dataset = 'windows.security' AND code = '4657' THEN {_case_map(_v('operation_type'), REGISTRY_OPERATIONS)}
    WHEN dataset = 'windows.security' THEN {_case_map('code', SECURITY_ACTIONS)}
    WHEN dataset = 'windows.sysmon' AND code IN {sql_list(SYSMON_REGISTRY_CODES)}
      THEN CASE WHEN {_v('event_type')} IN {sql_list(REGISTRY_EVENT_TYPES)} THEN {_v('event_type')} END
    WHEN dataset = 'windows.sysmon' THEN {_case_map('code', SYSMON_ACTIONS)}
    WHEN dataset = 'windows.system' AND code = '104' AND contains(lower(coalesce({_v('provider')}, '')), 'eventlog')
      THEN 'log-cleared'
    WHEN dataset = 'windows.powershell' AND code = '4104' THEN 'script-block-logged'
    WHEN is_cmdlet THEN items[1]
    WHEN dataset = 'windows.powershell' AND code IN ('4103', '800') THEN t_action
  END AS "event.action",
  CASE WHEN is_cmdlet AND code = '1' THEN 'success' WHEN is_cmdlet THEN 'failure' ELSE 'unknown' END
    AS "event.outcome",
  {_v('provider')} AS "event.provider",
  dataset AS "event.dataset",
  code AS "event.code",
  account.name AS "user.name",
  CASE
    WHEN user_id IN ('S-1-5-18', 'S-1-5-19', 'S-1-5-20')
      OR starts_with(lower(coalesce(account.name, '')), 'nt authority\\')
      OR ends_with(coalesce(account.name, ''), '$')
      OR (account.name IS NOT NULL AND lower(coalesce(account.domain, '')) = 'nt authority')
      OR lower(coalesce(account.name, '')) IN ('system', 'local service', 'network service')
    THEN 'system'
  END AS "user.type",
  user_id AS "user.id",
  CASE WHEN account.name IS NOT NULL THEN account.domain END AS "user.domain",
  CASE WHEN dataset = 'windows.security' AND code IN ('4720', '4723', '4724', '4738') THEN
    CASE WHEN nullif({_v('target_name')}, '') IS NOT NULL AND nullif({_v('target_domain')}, '') IS NOT NULL
              AND {_v('target_domain')} <> '-'
         THEN {_v('target_domain')} || '\\' || {_v('target_name')} ELSE {_v('target_name')} END
    WHEN is_cmdlet OR dataset = 'windows.powershell' THEN t_target
  END AS "user.target.name",
  CASE WHEN is_cmdlet OR dataset = 'windows.powershell' THEN t_rule END AS "rule.name",
  CASE WHEN is_cmdlet OR dataset = 'windows.powershell' THEN t_params
       WHEN dataset = 'windows.system' THEN coalesce(numbered_named, CASE WHEN len(items) > 0 THEN
         MAP(list_transform(range(1, len(items) + 1), lambda i: 'param' || i), items) END) END AS "params",
  CASE WHEN is_cmdlet OR dataset = 'windows.powershell' THEN t_parameters END AS "parameters",
  CASE WHEN dataset = 'windows.security' AND code = '4688' THEN {_pid(_v('new_process_id'))}
       WHEN dataset = 'windows.sysmon' THEN {_pid(_v('process_id'))}
       WHEN is_cmdlet AND regexp_full_match(cmdlet_pid, '[0-9]+') AND nullif(cmdlet_process_name, '') IS NOT NULL
         THEN TRY_CAST(cmdlet_pid AS BIGINT) END AS "process.pid",
  CASE WHEN dataset = 'windows.security' AND code = '4688' THEN {_basename(_v('new_process_name'))}
       WHEN dataset = 'windows.sysmon' THEN {_basename(_v('image'))}
       WHEN is_cmdlet AND regexp_full_match(cmdlet_pid, '[0-9]+') AND nullif(cmdlet_process_name, '') IS NOT NULL
         THEN cmdlet_process_name
       WHEN is_cmdlet THEN nullif(items[7], '') END AS "process.name",
  CASE WHEN dataset = 'windows.security' AND code = '4688' THEN {_v('new_process_name')}
       WHEN dataset = 'windows.sysmon' THEN {_v('image')} END AS "process.executable",
  CASE WHEN (dataset = 'windows.security' AND code = '4688') OR (dataset = 'windows.sysmon' AND code = '1')
       THEN {_v('command_line')}
       WHEN dataset = 'windows.powershell' AND code IN ('4103', '800') THEN ctx_host_application
  END AS "process.command_line",
  CASE WHEN dataset = 'windows.security' AND code = '4688' THEN {_basename(_v('parent_process_name'))}
       WHEN dataset = 'windows.sysmon' AND code = '1' THEN {_basename(_v('parent_image'))} END AS "process.parent.name",
  CASE WHEN dataset = 'windows.security' AND code = '4688' THEN {_v('parent_process_name')}
       WHEN dataset = 'windows.sysmon' AND code = '1' THEN {_v('parent_image')} END AS "process.parent.executable",
  CASE WHEN dataset = 'windows.sysmon' AND code = '1' THEN {_v('parent_command_line')} END
    AS "process.parent.command_line",
  CASE WHEN dataset = 'windows.powershell' AND code = '4104' THEN {_v('script_block_text')} END
    AS "powershell.file.script_block_text",
  CASE WHEN dataset = 'windows.powershell' AND code = '4104' THEN nullif({_v('script_path')}, '')
       WHEN dataset = 'windows.sysmon' AND code IN ('11', '23', '26') THEN {_v('target_filename')} END AS "file.path",
  CASE WHEN dataset = 'windows.sysmon' AND code IN {sql_list(SYSMON_REGISTRY_CODES)} THEN {_v('target_object')}
       WHEN dataset = 'windows.security' AND code = '4657' THEN
         CASE WHEN nullif({_v('object_name')}, '') IS NOT NULL AND nullif({_v('object_value_name')}, '') IS NOT NULL
              THEN {_v('object_name')} || '\\' || {_v('object_value_name')} ELSE nullif({_v('object_name')}, '') END
  END AS "registry.path",
  CASE WHEN dataset = 'windows.sysmon' AND code IN {sql_list(SYSMON_REGISTRY_CODES)} THEN {_v('details')}
       WHEN dataset = 'windows.security' AND code = '4657' THEN {_v('new_value')} END AS "registry.data.strings",
  nullif(computer, '') AS "host.name",
  nullif(channel, '') AS "winlog.channel",
  record_id AS "winlog.record_id",
  CASE WHEN dataset = 'windows.system' AND code = '104' AND contains(lower(coalesce({_v('provider')}, '')), 'eventlog')
            AND nullif({_v('cleared_channel')}, '') IS NOT NULL
       THEN MAP(['cleared_channel'], [{_v('cleared_channel')}])
       WHEN is_cmdlet AND nullif(items[6], '') IS NOT NULL THEN MAP(['exchange_client'], [items[6]])
       WHEN dataset = 'windows.powershell' AND code IN ('4103', '800') AND t_commands IS NOT NULL
         THEN MAP(['commands'], [t_commands]) END AS labels,
FROM mapped
ORDER BY row_index
"""

STAGE_SCHEMA = pa.schema([("row_index", pa.int64()), ("raw", pa.large_string())])


def text_fields(keys: list[tuple]) -> pa.Table:
    """Each distinct cmdlet or pipeline text of a batch mapped by ``windows_events``' own functions.

    ``keys`` are (kind, cmdlet, text, user name) rows of ``_TEXT_KEYS_SQL``.
    """
    rows = []
    for kind, action, text, user_name in keys:
        fields = cmdlet_fields(action, text, user_name) if kind == "cmdlet" else pipeline_fields(text, user_name)
        rows.append({
            "kind": kind, "action": action, "text": text, "user_name": user_name,
            "t_action": fields.get("event.action"), "t_params": fields.get("params"),
            "t_parameters": fields.get("parameters"), "t_target": fields.get("user.target.name"),
            "t_rule": fields.get("rule.name"), "t_commands": fields.get("commands"),
        })
    return pa.Table.from_pylist(rows, schema=TEXT_FIELDS_SCHEMA)


class WindowsNormalizer:
    def __init__(self) -> None:
        self._db = duckdb.connect(":memory:", config={"memory_limit": memory.budget().mapping_database})
        self._db.execute("SET TimeZone = 'UTC'")

    def normalize(self, raw: pa.Array, locators: pa.Array, path: str, sha256: str) -> tuple[pa.Table, list[bool]]:
        """(events in SCHEMA for every record, which of them need the Python mapping instead)."""
        stage = pa.table([pa.array(range(len(raw)), pa.int64()), raw], schema=STAGE_SCHEMA)
        db = self._db
        db.register("stage", stage)
        try:
            db.execute(f"CREATE OR REPLACE TEMP TABLE fields AS {_FIELDS_SQL}")
            repeating = [row[0] for row in db.execute(_REPEATING_LAYOUTS_SQL).fetchall()]
            if repeating:
                db.execute("UPDATE fields SET unmappable = true WHERE list_contains(?, layout)", [repeating])
        finally:
            db.unregister("stage")
        db.register("text_fields", text_fields(db.execute(_TEXT_KEYS_SQL).fetchall()))
        try:
            result = db.sql(_EVENTS_SQL).to_arrow_table()
        finally:
            db.unregister("text_fields")
            db.execute("DROP TABLE fields")
        needs_python = result.column("needs_python").to_pylist()
        rows = len(result)
        columns = []
        for field in SCHEMA:
            if field.name == "event.original":
                columns.append(raw)
            elif field.name == "log.record":
                columns.append(locators)
            elif field.name in result.column_names:
                columns.append(result.column(field.name).cast(field.type))
            elif field.name == "log.file.path":
                columns.append(pa.array([path] * rows, field.type))
            elif field.name == "log.file.sha256":
                columns.append(pa.array([sha256] * rows, field.type))
            else:
                columns.append(pa.nulls(rows, field.type))
        return pa.Table.from_arrays(columns, schema=SCHEMA), needs_python




def gap_candidates(table: pa.Table, locators: pa.Array) -> list[tuple]:
    """The rows of a normalized batch where the EventRecordID check has something to do.

    Per channel of a computer (compared lower-cased, as ``WindowsEventStream``
    does), among rows with a record id and a time: its first row (compared
    with the previous batch), every row whose id jumps forward past the one
    before it, and its last row (the state for the next batch). Each is (row,
    the row before it in this batch, that row's record id, its locator), the
    last three None for a first row, in row order. Every other row continues
    its channel by one and needs no Python. Column-wise in Arrow: a sort of
    the rows by channel, then each row compared with its neighbour.
    """
    rows = pc.indices_nonzero(pc.and_(pc.is_valid(table.column("winlog.record_id")),
                                      pc.is_valid(table.column("@timestamp"))))
    count = len(rows)
    if not count:
        return []
    keys = pc.binary_join_element_wise(
        pc.utf8_lower(pc.fill_null(table.column("host.name").take(rows), "")),
        pc.utf8_lower(pc.fill_null(table.column("winlog.channel").take(rows), "")), "\x1f")
    order = pc.sort_indices(pa.table({"key": keys, "row": rows}), sort_keys=[("key", "ascending"), ("row", "ascending")])
    keys, rows = keys.take(order), rows.take(order)
    record_ids, row_locators = table.column("winlog.record_id").take(rows), locators.take(rows)
    # boundary[j]: rows j and j + 1 (in sorted order) are of different channels
    boundary = pc.not_equal(keys.slice(1), keys.slice(0, count - 1))
    before, after = record_ids.slice(0, count - 1), record_ids.slice(1)
    # a forward jump past the next number; adding 1 to the largest int64 wraps, where nothing is greater anyway
    jump = pc.and_(pc.invert(boundary), pc.and_(pc.greater(after, before), pc.not_equal(after, pc.add(before, 1))))
    boundaries = pc.indices_nonzero(boundary).to_pylist()
    firsts = {0} | {j + 1 for j in boundaries}
    wanted = firsts | {count - 1} | set(boundaries) | {j + 1 for j in pc.indices_nonzero(jump).to_pylist()}
    rows_list = rows.to_pylist()
    result = []
    for position in wanted:
        if position in firsts:
            result.append((rows_list[position], None, None, None))
        else:
            result.append((rows_list[position], rows_list[position - 1], record_ids[position - 1].as_py(),
                           row_locators[position - 1].as_py()))
    return sorted(result)


_idle: list[WindowsNormalizer] = []
_idle_lock = threading.Lock()


@contextmanager
def borrowed_normalizer() -> Iterator[WindowsNormalizer]:
    """A normalizer for this call only: connections are kept for the next file, never shared at once."""
    with _idle_lock:
        normalizer = _idle.pop() if _idle else None
    if normalizer is None:
        normalizer = WindowsNormalizer()
    try:
        yield normalizer
    finally:
        with _idle_lock:
            _idle.append(normalizer)
