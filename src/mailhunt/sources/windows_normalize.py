"""Windows event records to normalized events a batch at a time, in SQL.

The EVTX parser hands over each record as JSON text; parsing and mapping them
one by one in Python would cost several times what the parser itself takes.
So the bulk of records (Security, System, Sysmon, script blocks in one part,
and every other channel) is mapped by DuckDB from the JSON text in one
multi-path extraction per record. The SQL gives the same columns as
``windows_events.map_record`` (a test compares the two on every public
sample); records that need Python are flagged ``needs_python`` and mapped
there by the caller:

- ``MSExchange Management`` cmdlet records (the parameter text is parsed like
  the audit log's),
- PowerShell 4103 and 800 (CommandInvocation/ParameterBinding lines),
- 4104 parts of a script block logged in several records (reassembled),
- anything the SQL cannot read (invalid JSON, no time, no EventID): Python
  rejects it with its reason.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from mailhunt.events import SCHEMA
from mailhunt.sources.windows_events import DATASET_BY_CHANNEL, OTHER_DATASET, SECURITY_ACTIONS, SYSMON_ACTIONS

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
}


def _json_path(path: tuple[str, ...]) -> str:
    return "$.Event." + ".".join('"' + key.replace('"', '\\"') + '"' for key in path)


def _v(name: str) -> str:
    return f"f_{name}"


def _flatten() -> str:
    """Each extracted value under its name (DuckDB lists count from 1)."""
    return ",\n         ".join(f"v[{index}] AS {_v(name)}" for index, name in enumerate(_PATHS, start=1))


def _case_map(expression: str, mapping: dict[str, str]) -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in mapping.items())
    return f"CASE {expression} {whens} END"


def _basename(expression: str) -> str:
    return f"nullif(regexp_extract({expression}, '[^\\\\/]*$'), '')"


def _pid(expression: str) -> str:
    return f"TRY_CAST(trim({expression}) AS BIGINT)"


_PATH_LIST = "[" + ", ".join("'" + _json_path(path).replace("'", "''") + "'" for path in _PATHS.values()) + "]"

_SQL = f"""
WITH parsed AS (
  SELECT row_index, TRY(json_extract_string(raw, {_PATH_LIST})) AS v
  FROM stage
), extracted AS (
  SELECT row_index, v IS NOT NULL AS valid,
         {_flatten()}
  FROM parsed
), fields AS (
  SELECT *,
    coalesce({_v('channel')}, '') AS channel,
    coalesce({_v('computer')}, '') AS computer,
    CASE WHEN starts_with({_v('event_id')}, '{{') THEN TRY(json_extract_string({_v('event_id')}, '$."#text"'))
         ELSE {_v('event_id')} END AS code,
    TRY_CAST({_v('record_id')} AS BIGINT) AS record_id,
    TRY_CAST(TRY_CAST(replace({_v('system_time')}, ' ', 'T') AS TIMESTAMPTZ) AT TIME ZONE 'UTC' AS TIMESTAMP) AS ts,
    {_case_map(f"lower(coalesce({_v('channel')}, ''))", DATASET_BY_CHANNEL)} AS known_dataset
  FROM extracted
), typed AS (
  SELECT *, coalesce(known_dataset, '{OTHER_DATASET}') AS dataset FROM fields
), mapped AS (
  SELECT *,
    CASE
      WHEN dataset = 'windows.security' THEN
        struct_pack(name := nullif(nullif(coalesce({_v('subject_name')}, {_v('cleared_name')}), '-'), ''),
                    domain := nullif(nullif(coalesce({_v('subject_domain')}, {_v('cleared_domain')}), '-'), ''))
      WHEN dataset = 'windows.system' AND code = '104' AND contains(lower(coalesce({_v('provider')}, '')), 'eventlog') THEN
        struct_pack(name := nullif(nullif({_v('cleared_name')}, '-'), ''),
                    domain := nullif(nullif({_v('cleared_domain')}, '-'), ''))
      WHEN dataset = 'windows.sysmon' AND nullif({_v('sysmon_user')}, '') IS NOT NULL THEN
        struct_pack(name := nullif(nullif(regexp_extract({_v('sysmon_user')}, '[^\\\\]*$'), '-'), ''),
                    domain := nullif(nullif(CASE WHEN contains({_v('sysmon_user')}, '\\')
                        THEN regexp_extract({_v('sysmon_user')}, '^(.*)\\\\[^\\\\]*$', 1) END, '-'), ''))
    END AS account,
    CASE
      WHEN dataset = 'windows.sysmon' THEN NULL
      WHEN dataset = 'windows.security' AND nullif(coalesce({_v('subject_sid')}, {_v('cleared_sid')}), '') IS NOT NULL
        THEN coalesce({_v('subject_sid')}, {_v('cleared_sid')})
      ELSE {_v('security_sid')}
    END AS user_id
  FROM typed
)
SELECT
  row_index,
  NOT valid OR ts IS NULL OR code IS NULL OR record_id IS NULL
    OR dataset = 'windows.msexchange_management'
    OR (dataset = 'windows.powershell' AND code IN ('4103', '800'))
    OR (dataset = 'windows.powershell' AND code = '4104' AND coalesce(TRY_CAST({_v('message_total')} AS BIGINT), 1) > 1
        AND nullif({_v('script_block_id')}, '') IS NOT NULL) AS needs_python,
  substr(sha256('windows.' || lower(computer) || '.' || lower(channel) || chr(31) || CAST(record_id AS VARCHAR)), 1, 32)
    AS "event.id",
  ts AS "@timestamp",
  CASE
    WHEN dataset = 'windows.security' THEN {_case_map('code', SECURITY_ACTIONS)}
    WHEN dataset = 'windows.sysmon' THEN {_case_map('code', SYSMON_ACTIONS)}
    WHEN dataset = 'windows.system' AND code = '104' AND contains(lower(coalesce({_v('provider')}, '')), 'eventlog')
      THEN 'log-cleared'
    WHEN dataset = 'windows.powershell' AND code = '4104' THEN 'script-block-logged'
  END AS "event.action",
  'unknown' AS "event.outcome",
  {_v('provider')} AS "event.provider",
  dataset AS "event.dataset",
  code AS "event.code",
  account.name AS "user.name",
  CASE
    WHEN user_id IN ('S-1-5-18', 'S-1-5-19', 'S-1-5-20')
      OR starts_with(lower(coalesce(account.name, '')), 'nt authority\\')
      OR ends_with(coalesce(account.name, ''), '$')
      OR lower(coalesce(account.domain, '')) = 'nt authority'
      OR lower(coalesce(account.name, '')) IN ('system', 'local service', 'network service')
    THEN 'system'
  END AS "user.type",
  user_id AS "user.id",
  account.domain AS "user.domain",
  CASE WHEN dataset = 'windows.security' AND code IN ('4720', '4723', '4724', '4738') THEN
    CASE WHEN nullif({_v('target_name')}, '') IS NOT NULL AND nullif({_v('target_domain')}, '') IS NOT NULL
              AND {_v('target_domain')} <> '-'
         THEN {_v('target_domain')} || '\\' || {_v('target_name')} ELSE {_v('target_name')} END
  END AS "user.target.name",
  CASE WHEN dataset = 'windows.security' AND code = '4688' THEN {_pid(_v('new_process_id'))}
       WHEN dataset = 'windows.sysmon' THEN {_pid(_v('process_id'))} END AS "process.pid",
  CASE WHEN dataset = 'windows.security' AND code = '4688' THEN {_basename(_v('new_process_name'))}
       WHEN dataset = 'windows.sysmon' THEN {_basename(_v('image'))} END AS "process.name",
  CASE WHEN dataset = 'windows.security' AND code = '4688' THEN {_v('new_process_name')}
       WHEN dataset = 'windows.sysmon' THEN {_v('image')} END AS "process.executable",
  CASE WHEN (dataset = 'windows.security' AND code = '4688') OR (dataset = 'windows.sysmon' AND code = '1')
       THEN {_v('command_line')} END AS "process.command_line",
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
  nullif(computer, '') AS "host.name",
  nullif(channel, '') AS "winlog.channel",
  record_id AS "winlog.record_id",
  CASE WHEN dataset = 'windows.system' AND code = '104' AND contains(lower(coalesce({_v('provider')}, '')), 'eventlog')
            AND nullif({_v('cleared_channel')}, '') IS NOT NULL
       THEN MAP(['cleared_channel'], [{_v('cleared_channel')}]) END AS labels,
FROM mapped
"""

STAGE_SCHEMA = pa.schema([("row_index", pa.int64()), ("raw", pa.large_string())])
# Row order is kept: DuckDB preserves insertion order for this projection-only query.


class WindowsNormalizer:
    def __init__(self) -> None:
        self._db = duckdb.connect(":memory:", config={"memory_limit": "256MB"})
        self._db.execute("SET TimeZone = 'UTC'")

    def normalize(self, raw: pa.Array, locators: pa.Array, path: str, sha256: str) -> tuple[pa.Table, list[bool]]:
        """(events in SCHEMA for every record, which of them need the Python mapping instead)."""
        stage = pa.table([pa.array(range(len(raw)), pa.int64()), raw], schema=STAGE_SCHEMA)
        db = self._db
        db.register("stage", stage)
        try:
            result = db.sql(_SQL).to_arrow_table()
        finally:
            db.unregister("stage")
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
