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

import duckdb
import pyarrow as pa

from mailhunt.events import SCHEMA
from mailhunt.sources.windows_events import DATASET_BY_CHANNEL, OTHER_DATASET, SECURITY_ACTIONS, SYSMON_ACTIONS

_PATHS = {
    "channel": "$.Event.System.Channel",
    "computer": "$.Event.System.Computer",
    "event_id": "$.Event.System.EventID",
    "event_id_text": '$.Event.System.EventID."#text"',
    "provider": '$.Event.System.Provider."#attributes".Name',
    "system_time": '$.Event.System.TimeCreated."#attributes".SystemTime',
    "record_id": "$.Event.System.EventRecordID",
    "security_sid": '$.Event.System.Security."#attributes".UserID',
    "message_total": "$.Event.EventData.MessageTotal",
    "script_block_id": "$.Event.EventData.ScriptBlockId",
    "script_block_text": "$.Event.EventData.ScriptBlockText",
    "script_path": "$.Event.EventData.Path",
    "subject_sid": "$.Event.EventData.SubjectUserSid",
    "subject_name": "$.Event.EventData.SubjectUserName",
    "subject_domain": "$.Event.EventData.SubjectDomainName",
    "cleared_sid": "$.Event.UserData.LogFileCleared.SubjectUserSid",
    "cleared_name": "$.Event.UserData.LogFileCleared.SubjectUserName",
    "cleared_domain": "$.Event.UserData.LogFileCleared.SubjectDomainName",
    "cleared_channel": "$.Event.UserData.LogFileCleared.Channel",
    "target_name": "$.Event.EventData.TargetUserName",
    "target_domain": "$.Event.EventData.TargetDomainName",
    "new_process_name": "$.Event.EventData.NewProcessName",
    "new_process_id": "$.Event.EventData.NewProcessId",
    "command_line": "$.Event.EventData.CommandLine",
    "parent_process_name": "$.Event.EventData.ParentProcessName",
    "image": "$.Event.EventData.Image",
    "process_id": "$.Event.EventData.ProcessId",
    "parent_image": "$.Event.EventData.ParentImage",
    "parent_command_line": "$.Event.EventData.ParentCommandLine",
    "sysmon_user": "$.Event.EventData.User",
    "target_filename": "$.Event.EventData.TargetFilename",
}
_NAMES = list(_PATHS)


def _v(name: str) -> str:
    return f"v[{_NAMES.index(name) + 1}]"


def _case_map(expression: str, mapping: dict[str, str]) -> str:
    whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in mapping.items())
    return f"CASE {expression} {whens} END"


def _basename(expression: str) -> str:
    return f"nullif(regexp_extract({expression}, '[^\\\\/]*$'), '')"


def _pid(expression: str) -> str:
    return f"TRY_CAST(trim({expression}) AS BIGINT)"


_PATH_LIST = "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in _PATHS.values()) + "]"

_SQL = f"""
WITH extracted AS (
  SELECT row_index,
         CASE WHEN json_valid(raw) THEN json_extract_string(raw, {_PATH_LIST}) END AS v
  FROM stage
), fields AS (
  SELECT *,
    v IS NOT NULL AS valid,
    coalesce({_v('channel')}, '') AS channel,
    coalesce({_v('computer')}, '') AS computer,
    CASE WHEN starts_with({_v('event_id')}, '{{') THEN {_v('event_id_text')} ELSE {_v('event_id')} END AS code,
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


_local = threading.local()


def windows_normalizer() -> WindowsNormalizer:
    """One normalizer per thread (DuckDB connections are not shared across threads)."""
    if not hasattr(_local, "normalizer"):
        _local.normalizer = WindowsNormalizer()
    return _local.normalizer

