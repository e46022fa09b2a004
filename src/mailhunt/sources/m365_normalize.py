"""Unified audit log records (AuditData JSON) to normalized events, a batch at a time, in SQL.

Every M365 container (Purview CSV, classic CSV, NDJSON, JSON arrays, Sentinel
and Defender rows) hands this module the AuditData text of its records with
their locators as ``StagedAuditRecords``; DuckDB parses and maps them in bulk,
in the case database itself when the store runs the batch, which is what makes
the audit-log path fast. Two parts are Python's, each run once per distinct
input of a batch and joined back: cmdlet parameters written as PowerShell text
(Security & Compliance records) are parsed by ``cmdlet_parameters``, and the
mailbox a cmdlet acts on and the rule it names come from the cmdlet rule every
other reader of cmdlets uses (``parameter_target``, ``cmdlet_rule_name``).

Semantics (documented per column in docs/events.md):
- ``@timestamp``: AuditData ``CreationTime``; without a zone it is UTC, as the
  service writes it; offsets are converted. Without one, the container's date
  (Purview ``CreationDate``, ISO or US ``M/D/YYYY h:mm:ss AM``, UTC) is used.
- ``user.name`` lower-cased; ``user.type`` from ``UserType`` (``system`` also
  for ``NT AUTHORITY\\SYSTEM ...``/``S-1-5-18``).
- ``event.outcome``: from ``ResultStatus``, except that a ``UserLoginFailed`` record is a failure whatever
  its ``ResultStatus`` says (the service writes ``Success`` there: the record itself was logged).
- ``source.ip``: ``1.2.3.4``, ``1.2.3.4:5678``, ``[2001:db8::1]:443`` and
  ``2001:db8::1`` become the bare address; anything else is left out.
- ``params``: cmdlet parameter names lower-cased (first value wins on
  duplicates); ``parameters``: the same as ``-Name value`` text.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from mailhunt import memory
from mailhunt.events import PARAMS_TYPE, SCHEMA, sql_out_of_range_reason, sql_utc_time
from mailhunt.sources.base import ReadContext, duplicate_keys
from mailhunt.sources.cmdlet_parameters import (
    ActorTarget,
    cmdlet_rule_name,
    names_target_or_rule,
    parameter_target,
    parse_parameter_text,
)

DATASET = "m365.audit"

STAGE_SCHEMA = pa.schema([
    ("row_index", pa.int64()),
    ("raw", pa.large_string()),
    ("locator", pa.int64()),
    ("fallback", pa.string()),
    ("original", pa.large_string()),
    ("part", pa.int32()),
])

_STRINGS = (
    "Id", "CreationTime", "Operation", "ResultStatus", "Workload", "RecordType", "UserId", "UserType",
    "ClientIP", "ClientIPAddress", "ActorIpAddress", "OriginatingServer", "AppId", "ClientAppId", "UserAgent",
    "ClientInfoString", "OrganizationId", "MailboxOwnerUPN", "ObjectId",
)
_COMPLEX = ("Parameters", "OperationProperties", "ModifiedProperties")
_NAME_VALUE = [{"Name": "VARCHAR", "Value": "VARCHAR"}]
_RECORD_STRUCTURE = {
    **{name: "VARCHAR" for name in _STRINGS},
    "Item": {"Subject": "VARCHAR", "InternetMessageId": "VARCHAR", "ParentFolder": {"Path": "VARCHAR"}},
    "Folder": {"Path": "VARCHAR"},
    "ParentFolder": {"Path": "VARCHAR"},
    "AffectedItems": [{"Subject": "VARCHAR", "InternetMessageId": "VARCHAR", "ParentFolder": {"Path": "VARCHAR"}}],
    "Folders": [{"Path": "VARCHAR", "FolderItems": [{"InternetMessageId": "VARCHAR"}]}],
    "ExtendedProperties": _NAME_VALUE,
}
# Lists of known shape are parsed as typed lists; the members whose shape
# varies (parameters may be a list or PowerShell text) come out as JSON
# fragments through one multi-path extraction, which costs far less than
# JSON-typed members of the struct. That extraction also gives Operation and
# CreationTime, all that deciding a record's fate needs; the typed struct is
# parsed only for the good records, in the query that makes their events, and
# never stored (storing nested structs costs more than parsing them).
_COMPLEX_PATHS = "[" + ", ".join(f"'$.{name}'" for name in (*_COMPLEX, "Operation", "CreationTime")) + "]"
_STRUCTURE = json.dumps(_RECORD_STRUCTURE).replace("'", "''")


def _ref(name: str) -> str:
    """SQL reference to a field of the parsed record ``r``, e.g. ``Item.Subject``."""
    return "r." + ".".join(f'"{part}"' for part in name.split("."))


def _f(name: str) -> str:
    return f"nullif({_ref(name)}, '')"


def _j(name: str) -> str:
    return f"j[{_COMPLEX.index(name) + 1}]"


_USER_TYPES = {
    "0": "regular", "1": "reserved", "2": "admin", "3": "dcadmin", "4": "system", "5": "application",
    "6": "service_principal", "7": "custom_policy", "8": "system_policy", "9": "partner_technician", "10": "guest",
    "regular": "regular", "reserved": "reserved", "admin": "admin", "dcadmin": "dcadmin", "system": "system",
    "application": "application", "serviceprincipal": "service_principal", "custompolicy": "custom_policy",
    "systempolicy": "system_policy", "partnertechnician": "partner_technician", "guest": "guest",
}
_USER_TYPE_CASE = "CASE replace(lower(ut), '_', '') " + " ".join(
    f"WHEN '{k}' THEN '{v}'" for k, v in _USER_TYPES.items()) + " ELSE 'unknown' END"

_IPV4 = r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})(?::\d{1,5})?$"
_IPV6_BRACKETED = r"^\[([0-9A-Fa-f:.]+)\](:\d{1,5})?$"
_IPV6 = r"^[0-9A-Fa-f]{0,4}:[0-9A-Fa-f:.]*$"

# A CreationTime that is a time but outside what @timestamp holds (year 0, 10000)
# rejects the record; the container's date does not stand in for it. Text
# DuckDB alone reads as a time ('epoch', 'infinity') is no ISO-8601 time.
FIELDS_SQL = f"""
CREATE OR REPLACE TEMP TABLE fielded AS
SELECT row_index, part, locator, valid, j, operation, creation, layout,
       creation_ts IS NOT NULL AND {sql_utc_time('creation_ts')} IS NULL AS out_of_range,
       CASE WHEN creation_ts IS NULL
            THEN {sql_utc_time("coalesce(try_strptime(fallback, '%m/%d/%Y %I:%M:%S %p'), "
                               "try_cast(fallback AS TIMESTAMPTZ) AT TIME ZONE 'UTC')")}
            ELSE {sql_utc_time('creation_ts')} END AS ts
FROM (SELECT *, CASE WHEN regexp_matches(creation, '^\\s*[+-]?[0-9]')
                     THEN try_cast(creation AS TIMESTAMPTZ) AT TIME ZONE 'UTC' END AS creation_ts
FROM (SELECT row_index, part, locator, fallback, j IS NOT NULL AS valid, j,
             nullif(json_extract_string(j[{len(_COMPLEX) + 1}], '$'), '') AS operation,
             nullif(json_extract_string(j[{len(_COMPLEX) + 2}], '$'), '') AS creation,
             CASE WHEN j IS NOT NULL THEN hash(json_keys(raw)) END AS layout
      FROM (SELECT row_index, part, locator, fallback, raw, TRY(json_extract(raw, {_COMPLEX_PATHS})) AS j
            FROM stage WHERE NOT regexp_matches(raw, '^\\s*$'))))
"""

# Records whose top-level keys repeat one: the key list of one record of each layout (the hash of
# its keys, in order) is checked, then every record of a layout that repeats a key is. Checking each
# record's key list itself would cost more than the rest of the record's first pass. The samples are
# materialized so that the key check runs on them alone: left to the optimizer, the check on
# ``s.raw`` is pushed below the join into the scan of the stage, and every record's keys are read.
REPEATED_KEYS_SQL = """
WITH layouts AS (SELECT layout, min(row_index) AS sample FROM fielded WHERE layout IS NOT NULL GROUP BY layout),
samples AS MATERIALIZED (SELECT l.layout, s.raw FROM layouts l JOIN stage s ON s.row_index = l.sample),
repeating AS (SELECT layout FROM samples WHERE TRY(len(json_keys(raw)) <> list_unique(json_keys(raw))))
SELECT row_index FROM fielded WHERE layout IN (SELECT layout FROM repeating) ORDER BY row_index
"""

REJECT_SQL = f"""
SELECT part, locator, CASE
    WHEN NOT valid THEN 'not valid JSON (truncated or corrupt record)'
    WHEN operation IS NULL THEN 'no Operation: not a unified audit log record'
    WHEN out_of_range THEN 'CreationTime: ' || {sql_out_of_range_reason('creation')}
    WHEN ts IS NULL AND creation IS NULL THEN 'no CreationTime'
    ELSE 'CreationTime ' || chr(39) || left(creation, 40) || chr(39) || ' is not an ISO-8601 time'
  END AS reason
FROM fielded
WHERE NOT valid OR operation IS NULL OR ts IS NULL
ORDER BY part, locator
"""

_GOOD = "valid AND ts IS NOT NULL AND operation IS NOT NULL"

PARAM_ROWS_SQL = f"""
CREATE OR REPLACE TEMP TABLE param_rows AS
WITH listed AS (
  SELECT row_index,
         CASE WHEN json_type({_j('Parameters')}) = 'ARRAY' THEN {_j('Parameters')}
              WHEN json_type({_j('OperationProperties')}) = 'ARRAY' AND lower(operation) LIKE '%rule%'
                   THEN {_j('OperationProperties')} END AS plist
  FROM fielded WHERE {_GOOD}
), items AS (
  SELECT row_index, unnest(json_extract_string(plist, '$[*].Name')) AS name,
         unnest(json_extract_string(plist, '$[*].Value')) AS value,
         unnest(range(CAST(json_array_length(plist) AS BIGINT))) AS ord
  FROM listed WHERE plist IS NOT NULL
)
SELECT row_index, ord, name, coalesce(value, '') AS value FROM items WHERE name IS NOT NULL
"""

TEXT_PARAMS_SQL = f"""
CREATE OR REPLACE TEMP TABLE text_params AS
SELECT row_index, trim(json_extract_string({_j('Parameters')}, '$')) AS text
FROM fielded WHERE {_GOOD} AND json_type({_j('Parameters')}) = 'VARCHAR'
  AND length(trim(json_extract_string({_j('Parameters')}, '$'))) > 0
"""

CONSENTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE consents AS
SELECT row_index,
       nullif(array_to_string(list_sort(list_distinct(flatten(list_transform(
           regexp_extract_all(string_agg(value, ' ') FILTER (WHERE name LIKE '%Permission%' OR name LIKE '%ConsentAction%'),
                              'Scope:\\s*([^,\\]]*)', 1),
           lambda s: list_filter(string_split(trim(s), ' '), lambda w: w <> ''))))), ' '), '') AS scopes,
       nullif(split_part(max(value) FILTER (WHERE name = 'TargetId.ServicePrincipalNames'), ';', 1), '') AS app_id
FROM (
  SELECT row_index,
         unnest(json_extract_string({_j('ModifiedProperties')}, '$[*].Name')) AS name,
         unnest(json_extract_string({_j('ModifiedProperties')}, '$[*].NewValue')) AS value
  FROM fielded WHERE {_GOOD} AND lower(operation) LIKE 'consent to application%'
    AND json_type({_j('ModifiedProperties')}) = 'ARRAY'
)
GROUP BY row_index
"""

CONSENT_PARAMS_SQL = "INSERT INTO param_rows SELECT row_index, 10000, 'Scopes', scopes FROM consents WHERE scopes IS NOT NULL"

# ``parameters`` is the text ``admin_audit_record._parameter_text`` writes (the same rule, kept in SQL for speed).
PARAM_MAPS_SQL = """
CREATE OR REPLACE TEMP TABLE param_maps AS
SELECT row_index,
       map_from_entries(list({'key': lower(name), 'value': value} ORDER BY ord)
                        FILTER (WHERE first_for_key)) AS params,
       string_agg('-' || name || ' ' || CASE WHEN value = '' OR contains(value, ' ')
                                             THEN '"' || value || '"' ELSE value END, ' ' ORDER BY ord) AS parameters
FROM (SELECT *, row_number() OVER (PARTITION BY row_index, lower(name) ORDER BY ord) = 1 AS first_for_key
      FROM param_rows)
GROUP BY row_index
"""

# The records whose target or rule name the cmdlet rule (``cmdlet_parameters``) may give, grouped by
# what the rule reads: the operation (one of ``?``) and the parameters.
CMDLET_KEYS_SQL = f"""
SELECT d.operation, p.params, list(d.row_index) AS rows
FROM fielded d LEFT JOIN param_maps p USING (row_index)
WHERE {_GOOD} AND list_contains(?, d.operation)
GROUP BY ALL
"""

CMDLET_TARGETS_SCHEMA = pa.schema([("row_index", pa.int64()), ("param_target", pa.string()),
                                   ("target_is_actor", pa.bool_()), ("rule_name", pa.string())])

# Where each event was read: the temporary table ``provenance`` of one row, made with the paths and
# SHA-256 bound as parameters. A batch of one file's records reads its path and digest from it as one
# value, which DuckDB keeps once a vector until the rows are stored (as a value a row they took 170 MB
# more at the peak of a 1M-record load); a batch of several small files' records reads each part's.
_PROVENANCE = "__PROVENANCE__"
_ONE_FILE = '(SELECT path FROM provenance) AS "log.file.path", (SELECT sha256 FROM provenance) AS "log.file.sha256"'
_BY_PART = ('(SELECT paths FROM provenance)[part + 1] AS "log.file.path", '
            '(SELECT digests FROM provenance)[part + 1] AS "log.file.sha256"')
PROVENANCE_ONE_FILE_SQL = ("CREATE OR REPLACE TEMP TABLE provenance AS "
                           "SELECT CAST(? AS VARCHAR) AS path, CAST(? AS VARCHAR) AS sha256")
PROVENANCE_BY_PART_SQL = ("CREATE OR REPLACE TEMP TABLE provenance AS "
                          "SELECT CAST(? AS VARCHAR[]) AS paths, CAST(? AS VARCHAR[]) AS digests")

_EVENTS_TEMPLATE = f"""
WITH base AS (
  SELECT d.row_index, d.part, d.locator, d.ts, d.j, d.operation, r, c.app_id AS consented_app, s.original,
         lower({_f('UserId')}) AS user_name, p.params, ct.param_target, ct.target_is_actor, ct.rule_name,
         coalesce(t.text, p.parameters) AS parameters,
         CASE WHEN {_f('Id')} IS NULL THEN left(sha256(s.raw), 32) END AS raw_hash
  FROM fielded d JOIN stage s USING (row_index)
       CROSS JOIN LATERAL (SELECT from_json(s.raw, '{_STRUCTURE}') AS r)
       LEFT JOIN param_maps p USING (row_index) LEFT JOIN consents c USING (row_index)
       LEFT JOIN text_params t USING (row_index) LEFT JOIN cmdlet_targets ct USING (row_index)
  WHERE d.valid AND d.ts IS NOT NULL AND d.operation IS NOT NULL
), targeted AS (
  SELECT *,
    coalesce({_f('ClientIP')}, {_f('ClientIPAddress')}, {_f('ActorIpAddress')}) AS ip_text,
    regexp_extract(coalesce({_f('ClientIP')}, {_f('ClientIPAddress')}, {_f('ActorIpAddress')}), '{_IPV4}',
                   ['a', 'b', 'c', 'd']) AS ip4,
    list_transform(r."AffectedItems", lambda item: item."Subject") AS affected_subjects,
    len(r."AffectedItems") AS affected_count,
    nullif(r."AffectedItems"[1]."InternetMessageId", '') AS affected_message_id,
    nullif(r."AffectedItems"[1]."ParentFolder"."Path", '') AS affected_folder,
    list_sum(list_transform(r."Folders", lambda folder: len(folder."FolderItems"))) AS folder_item_count,
    nullif(r."Folders"[1]."Path", '') AS first_folder,
    list_transform(r."ExtendedProperties", lambda prop: prop."Name") AS ext_names,
    list_transform(r."ExtendedProperties", lambda prop: prop."Value") AS ext_values,
    {_f('UserType')} AS ut
  FROM base
)
SELECT
  row_index,
  CASE WHEN {_f('Id')} IS NOT NULL THEN left(sha256('{DATASET}' || chr(31) || {_f('Id')}), 32)
       ELSE raw_hash END AS "event.id",
  ts AS "@timestamp",
  operation AS "event.action",
  CASE WHEN lower(operation) = 'userloginfailed' THEN 'failure' ELSE CASE lower(coalesce({_f('ResultStatus')}, ''))
       WHEN 'succeeded' THEN 'success' WHEN 'success' THEN 'success' WHEN 'true' THEN 'success'
       WHEN 'partiallysucceeded' THEN 'success'
       WHEN 'failed' THEN 'failure' WHEN 'failure' THEN 'failure' WHEN 'false' THEN 'failure'
       ELSE 'unknown' END END AS "event.outcome",
  {_f('Workload')} AS "event.provider",
  '{DATASET}' AS "event.dataset",
  {_f('RecordType')} AS "event.code",
  user_name AS "user.name",
  CASE WHEN starts_with(user_name, 'nt authority\\system') OR starts_with(user_name, 's-1-5-18') THEN 'system'
       ELSE {_USER_TYPE_CASE} END AS "user.type",
  CASE WHEN lower(tgt) LIKE '%@%' THEN lower(tgt) ELSE tgt END AS "user.target.name",
  CASE
    WHEN ip4.a <> '' AND TRY_CAST(ip4.a AS INTEGER) <= 255 AND TRY_CAST(ip4.b AS INTEGER) <= 255
         AND TRY_CAST(ip4.c AS INTEGER) <= 255 AND TRY_CAST(ip4.d AS INTEGER) <= 255
      THEN ip4.a || '.' || ip4.b || '.' || ip4.c || '.' || ip4.d
    WHEN regexp_matches(ip_text, '{_IPV6_BRACKETED}') THEN lower(regexp_extract(ip_text, '{_IPV6_BRACKETED}', 1))
    WHEN regexp_matches(ip_text, '{_IPV6}') AND length(ip_text) - length(replace(ip_text, ':', '')) >= 2
      THEN lower(ip_text)
  END AS "source.ip",
  CAST(NULL AS VARCHAR) AS "source.geo.country_iso_code",
  nullif(trim({_f('OriginatingServer')}, ' ' || chr(10) || chr(13)), '') AS "host.name",
  CAST(NULL AS VARCHAR) AS "process.name",
  CAST(NULL AS VARCHAR) AS "process.command_line",
  CAST(NULL AS VARCHAR) AS "process.parent.name",
  coalesce({_f('ClientAppId')}, {_f('AppId')}, consented_app) AS "app.id",
  coalesce({_f('UserAgent')}, {_f('ClientInfoString')},
           nullif(ext_values[list_position(ext_names, 'UserAgent')], '')) AS "user_agent.original",
  nullif(array_to_string(list_filter(list_prepend({_f('Item.Subject')}, coalesce(affected_subjects, [])),
                                     lambda s: s IS NOT NULL AND s <> ''), ' | '), '') AS "email.subject",
  CAST(NULL AS VARCHAR) AS "email.from.address",
  CAST(NULL AS VARCHAR) AS "email.to.address",
  coalesce({_f('Item.InternetMessageId')}, affected_message_id) AS "email.message_id",
  coalesce({_f('Folder.Path')}, {_f('ParentFolder.Path')}, {_f('Item.ParentFolder.Path')},
           affected_folder, first_folder) AS "email.folder",
  CAST(coalesce(affected_count, CASE WHEN folder_item_count > 0 THEN folder_item_count END, 1) AS BIGINT)
    AS "email.item_count",
  rule_name AS "rule.name",
  params AS "params",
  parameters AS "parameters",
  {_f('OrganizationId')} AS "organization.id",
  locator AS "log.record",
  original AS "event.original",
  {_PROVENANCE}
FROM (SELECT *, coalesce(nullif(CASE WHEN target_is_actor THEN user_name ELSE param_target END, ''),
                         {_f('MailboxOwnerUPN')}, {_f('ObjectId')}) AS tgt FROM targeted)
"""
EVENTS_SQL_ONE_FILE = _EVENTS_TEMPLATE.replace(_PROVENANCE, _ONE_FILE)
EVENTS_SQL_BY_PART = _EVENTS_TEMPLATE.replace(_PROVENANCE, _BY_PART)


def cmdlet_targets(db: duckdb.DuckDBPyConnection) -> pa.Table:
    """Each staged record's ``param_target`` and ``rule_name`` from the cmdlet rule, for the records it names any
    (``target_is_actor``: the target is the record's user).

    The rule runs once per distinct (operation, parameters) of the batch; its
    answers are spread back to the records in Arrow.
    """
    operations = [op for (op,) in db.execute(f"SELECT DISTINCT operation FROM fielded WHERE {_GOOD}").fetchall()
                  if names_target_or_rule(op)]
    if not operations:
        return CMDLET_TARGETS_SCHEMA.empty_table()
    keys = db.sql(CMDLET_KEYS_SQL, params=[operations]).to_arrow_table()
    targets, actors, rule_names = [], [], []
    for operation, params in zip(keys.column("operation").to_pylist(), keys.column("params").to_pylist(), strict=True):
        named = dict(params or ())
        target = parameter_target(operation, named)
        actors.append(isinstance(target, ActorTarget))
        targets.append(None if isinstance(target, ActorTarget) else target)
        rule_names.append(cmdlet_rule_name(operation, named))
    rows = keys.column("rows").combine_chunks()
    key_of_row = pc.list_parent_indices(rows)
    return pa.table([pc.list_flatten(rows), pa.array(targets, pa.string()).take(key_of_row),
                     pa.array(actors, pa.bool_()).take(key_of_row), pa.array(rule_names, pa.string()).take(key_of_row)],
                    schema=CMDLET_TARGETS_SCHEMA)


class StagedAuditRecords:
    """A batch of AuditData texts with their locators, and the SQL that makes them events.

    ``originals`` (default: ``raw``) is each record as the file holds it, when
    ``raw`` is a rewritten form of it. With ``count_records`` the non-empty
    staged records are counted in ``context.records`` when the batch is mapped.

    ``combine`` makes one batch of the batches of many small files, mapped by one
    set of queries (whose cost is mostly per batch, not per record): each record
    is staged with its batch's number (``part``), gets its own file's path and
    SHA-256, and what the mapping finds (rejections, records counted, keys named
    twice) goes to the context of the batch it came from, once its events are in.
    """

    def __init__(self, raw: pa.Array | pa.ChunkedArray, locators: pa.Array | pa.ChunkedArray,
                 fallbacks: pa.Array | None, originals: pa.Array | None, path: str, digest: str | Future[str],
                 locator_unit: str, count_records: bool = False):
        raw = raw.cast(pa.large_string())
        if fallbacks is None:
            fallbacks = pa.nulls(len(raw), pa.string())
        if originals is None:
            originals = raw
        self.num_rows = len(raw)
        self.stage = pa.table([pa.array(range(self.num_rows), pa.int64()), raw, locators, fallbacks,
                               originals.cast(pa.large_string()), pa.repeat(pa.scalar(0, pa.int32()), self.num_rows)],
                              schema=STAGE_SCHEMA)
        self.unit = locator_unit
        self.count_records = count_records
        self.context = ReadContext(path, digest)
        self.parts: list[StagedAuditRecords] = [self]

    @classmethod
    def combine(cls, batches: list[StagedAuditRecords]) -> StagedAuditRecords:
        """One batch of the records of ``batches``; each keeps its file and its own report (its ``context``)."""
        stages, offset = [], 0
        for number, batch in enumerate(batches):
            stage = batch.stage.set_column(0, "row_index", pa.array(range(offset, offset + batch.num_rows), pa.int64()))
            stages.append(stage.set_column(stage.schema.get_field_index("part"), "part",
                                           pa.repeat(pa.scalar(number, pa.int32()), batch.num_rows)))
            offset += batch.num_rows
        combined = cls.__new__(cls)
        combined.num_rows = offset
        combined.stage = pa.concat_tables(stages)
        combined.unit, combined.count_records = batches[0].unit, batches[0].count_records
        combined.context = ReadContext(batches[0].context.path, batches[0].context.digest)
        combined.parts = list(batches)
        return combined

    def _prepare(self, db: duckdb.DuckDBPyConnection, reports: list[ReadContext]) -> None:
        """Everything up to the events query: validity, rejections, the parameter maps. What it finds
        about each part's records goes to that part's entry of ``reports``."""
        self._over_stage(db, FIELDS_SQL)
        repeating = [row[0] for row in self._rows_over_stage(db, REPEATED_KEYS_SQL).fetchall()]
        if repeating and self._read_last_values(repeating, reports):
            self._over_stage(db, FIELDS_SQL)
        if any(part.count_records for part in self.parts):
            for part, count in db.execute("SELECT part, count(*) FROM fielded GROUP BY part").fetchall():
                if self.parts[part].count_records:
                    reports[part].records += count
        for part, locator, reason in db.execute(REJECT_SQL).fetchall():
            reports[part].reject(f"{self.parts[part].unit} {locator}", reason)
        db.execute(PARAM_ROWS_SQL)
        db.execute(CONSENTS_SQL)
        db.execute(CONSENT_PARAMS_SQL)
        db.execute(TEXT_PARAMS_SQL)
        extra = [(row_index, order, name, value)
                 for row_index, text in db.execute("SELECT row_index, text FROM text_params").fetchall()
                 for order, (name, value) in enumerate(parse_parameter_text(text))]
        if extra:
            db.register("extra_rows", pa.table({
                "row_index": pa.array([e[0] for e in extra], pa.int64()),
                "ord": pa.array([e[1] for e in extra], pa.int64()),
                "name": pa.array([e[2] for e in extra], pa.string()),
                "value": pa.array([e[3] for e in extra], pa.string())}))
            db.execute("INSERT INTO param_rows SELECT * FROM extra_rows")
            db.unregister("extra_rows")
        db.execute(PARAM_MAPS_SQL)
        db.register("cmdlet_target_rows", cmdlet_targets(db))
        db.execute("CREATE OR REPLACE TEMP TABLE cmdlet_targets AS SELECT * FROM cmdlet_target_rows")
        db.unregister("cmdlet_target_rows")

    def _read_last_values(self, rows: list[int], reports: list[ReadContext]) -> bool:
        """Records naming a key twice in one object, as the SQL would read them (DuckDB's JSON
        functions take a repeated key's first value), rewritten with each key's last value, as
        Python, orjson and jq read them; flagged in their part's report. Whether any was rewritten."""
        raw, locators, parts = self.stage.column("raw"), self.stage.column("locator"), self.stage.column("part")
        replacements: list[str | None] = [None] * self.num_rows
        for row in rows:
            text = raw[row].as_py()
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError:
                continue
            repeated = duplicate_keys(text, value)
            if repeated:
                replacements[row] = orjson.dumps(value).decode()
                reports[parts[row].as_py()].flag_duplicate_keys(locators[row].as_py(), repeated)
        if not any(r is not None for r in replacements):
            return False
        rewritten = pc.coalesce(pa.array(replacements, pa.large_string()), raw)
        self.stage = self.stage.set_column(self.stage.schema.get_field_index("raw"), "raw", rewritten)
        return True

    def _run(self, db: duckdb.DuckDBPyConnection, action):
        """Map the batch in ``db`` and run ``action`` on the mapping; only when it succeeds does each part's
        context get what the mapping found, so a batch that fails can be mapped again."""
        reports = [ReadContext(part.context.path, part.context.digest) for part in self.parts]
        try:
            self._prepare(db, reports)
            result = action(db)
        finally:
            for table in _WORK_TABLES:
                db.execute(f"DROP TABLE IF EXISTS temp.{table}")
        for part, report in zip(self.parts, reports, strict=True):
            part.context.absorb(report)
        return result

    def _over_stage(self, db: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation | None:
        """Run ``sql`` with the staged records as the table ``stage`` (a query's rows, or None for a statement
        that returns none). They are scanned through a relation, not registered as a view: a view dropped
        inside the loading transaction keeps its Arrow buffers alive until that transaction commits, a
        relation's scan only while its statement runs."""
        return db.from_arrow(self.stage).query("stage", sql)

    def _rows_over_stage(self, db: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation:
        rows = self._over_stage(db, sql)
        if rows is None:
            raise RuntimeError(f"no rows from a query of the staged records: {sql[:60]}")
        return rows

    def _events_sql(self, db: duckdb.DuckDBPyConnection) -> str:
        """The events query, after binding its provenance (the file's path and SHA-256, or each part's by
        part number) into the temporary table it reads them from."""
        if len(self.parts) == 1:
            db.execute(PROVENANCE_ONE_FILE_SQL, [self.parts[0].context.path, self.parts[0].context.sha256])
            return EVENTS_SQL_ONE_FILE
        db.execute(PROVENANCE_BY_PART_SQL, [[part.context.path for part in self.parts],
                                            [part.context.sha256 for part in self.parts]])
        return EVENTS_SQL_BY_PART

    def insert_into(self, db: duckdb.DuckDBPyConnection, table: str) -> None:
        self._run(db, lambda db: self._over_stage(
            db, f"INSERT INTO {table} BY NAME SELECT * EXCLUDE (row_index) FROM ({self._events_sql(db)})"))
        for part in self.parts:
            part.stage = None
        self.stage = None

    def to_events(self) -> pa.Table:
        normalized = self._run(normalizer(), lambda db: self._rows_over_stage(
            db, self._events_sql(db) + " ORDER BY row_index").to_arrow_table())
        columns = []
        for field in SCHEMA:
            if field.name not in normalized.column_names:
                columns.append(pa.nulls(normalized.num_rows, field.type))
            elif field.name == "params":
                columns.append(normalized.column("params").cast(PARAMS_TYPE))
            else:
                columns.append(normalized.column(field.name).cast(field.type))
        return pa.table(columns, schema=SCHEMA)


_WORK_TABLES = ("provenance", "fielded", "param_rows", "consents", "text_params", "param_maps", "cmdlet_targets")
_local = threading.local()


def normalizer() -> duckdb.DuckDBPyConnection:
    """This thread's private in-memory database for mapping batches into Arrow (connections are per thread)."""
    if not hasattr(_local, "db"):
        _local.db = duckdb.connect(":memory:", config={"memory_limit": memory.budget().mapping_database})
        _local.db.execute("SET TimeZone = 'UTC'")
    return _local.db
