"""Windows records mapped in SQL give what the record-by-record mapping gives, MSExchange Management and PowerShell above all.

The records are the real ones of the public samples (ID6: four MSExchange
Management cmdlet records; ID800: PowerShell 4103, 800 and 4104), and
variants of them that change one field each the way other servers and other
cmdlets write them. Each variant is read twice as ``evtx_dump`` JSONL: in one
batch of SQL (``SQL_MIN_RECORDS`` 1) and record by record in Python; the
events must be equal, and the variants the SQL is meant to map must not have
been left to Python.
"""

import copy
import glob
import io
import random

import duckdb
import orjson
import pyarrow as pa
import pytest
from evtx import PyEvtxParser

from mailhunt.config import Config
from mailhunt.hunt import hunt
from mailhunt.sources import ReadContext, identify, windows_stream
from mailhunt.sources.windows_normalize import WindowsNormalizer
from mailhunt.sources.windows_stream import text_array
from tests.corpus import PUBLIC

MITRE = PUBLIC / "evtx-to-mitre-attack"


def sample(name: str) -> list[dict]:
    return [orjson.loads(r["data"]) for r in PyEvtxParser(str(MITRE / name)).records_json()]


def event_id(record: dict) -> int:
    value = record["Event"]["System"]["EventID"]
    return value["#text"] if isinstance(value, dict) else value


def set_event_id(record: dict, code: int) -> None:
    system = record["Event"]["System"]
    if isinstance(system["EventID"], dict):
        system["EventID"]["#text"] = code
    else:
        system["EventID"] = code


def by_code(records: list[dict], code: int) -> dict:
    return copy.deepcopy(next(r for r in records if event_id(r) == code))


def cmdlet(data: list, code: int = 1) -> dict:
    record = by_code(sample("ID6-Failed_to_install_an_Exchange_transport_agent.evtx"), 6)
    items = record["Event"]["EventData"]["Data"]["#text"]
    items[:len(data)] = data
    set_event_id(record, code)
    return record


def powershell_4103(context: str | None, payload: str | None) -> dict:
    record = by_code(sample("ID800-4103-4104-Clear_event_log_attempt.evtx"), 4103)
    data = record["Event"]["EventData"]
    for key, value in (("ContextInfo", context), ("Payload", payload)):
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return record


def powershell_800(items: list) -> dict:
    record = by_code(sample("ID800-4103-4104-Clear_event_log_attempt.evtx"), 800)
    record["Event"]["EventData"]["Data"]["#text"] = items
    return record


CONTEXT = ("        Severity = Informational\r\n        Host Name = ConsoleHost\r\n"
           "        Host Application = C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -NoP  \r\n"
           "        User = CORP\\jdoe\r\n        Sequence Number = 17\r\n")
NEW_INBOX_RULE = ('CommandInvocation(New-InboxRule): "New-InboxRule"\r\n'
                  'ParameterBinding(New-InboxRule): name="Name"; value="hide"\r\n'
                  'ParameterBinding(New-InboxRule): name="Mailbox"; value="ceo@corp.example"\r\n'
                  'ParameterBinding(New-InboxRule): name="DeleteMessage"; value="True"  \r\n')

# (name, record, mapped in SQL)
VARIANTS = [
    ("export request, succeeded", cmdlet(["New-MailboxExportRequest",
                                          '-Mailbox "jdoe" -FilePath "\\\\exch01\\c$\\inetpub\\x.pst"',
                                          "corp.example/Users/Administrator", "S-1-5-21-1-2-3-500", "", "EMC",
                                          "4242 w3wp#MSExchangePowerShellAppPool"]), True),
    ("export removed by identity", cmdlet(["Remove-MailboxExportRequest", ('-Identity "jdoe\\MailboxExport" '
                                            '-Confirm "False"'), "CORP\\admin", "", "", "", "w3wp"]), True),
    ("inbox rule by identity", cmdlet(["Set-InboxRule", '-Identity "jdoe\\hide" -DeleteMessage "True"',
                                       "corp.example/Users/jdoe", "S-1-5-18", "", "", "abc def"]), True),
    ("no caller, no process, no client", cmdlet(["Search-Mailbox", '-Identity "jdoe" -DeleteContent "True"',
                                                 "", "", "", "", ""], code=6), True),
    ("cmdlet without parameters", cmdlet(["Get-MailboxExportRequest", "", "CORP\\admin"]), True),
    ("no cmdlet", cmdlet(["", "-Identity x"]), True),
    ("other event id", cmdlet(["New-InboxRule", '-Name "x"'], code=7), True),
    ("parameter named twice", cmdlet(["Set-Mailbox", '-Identity "a" -identity "b"', "CORP\\admin"]), True),
    ("process id in other digits", cmdlet(["Set-Mailbox", '-Identity "a"', "CORP\\admin", "", "", "",
                                           "\u0664\u0662 w3wp"]), False),
    ("4103, one cmdlet", powershell_4103(CONTEXT, NEW_INBOX_RULE), True),
    ("4103, two cmdlets", powershell_4103(CONTEXT, NEW_INBOX_RULE + 'CommandInvocation(Out-Null): "Out-Null"\r\n'),
     True),
    ("4103, user given twice, the last one counts", powershell_4103(CONTEXT + "        User = CORP\\other\r\n",
                                                                     NEW_INBOX_RULE), True),
    ("4103, user is a dash", powershell_4103(CONTEXT.replace("CORP\\jdoe", "-"), NEW_INBOX_RULE), True),
    ("4103, user without domain", powershell_4103(CONTEXT.replace("CORP\\jdoe", "jdoe"), NEW_INBOX_RULE), True),
    ("4103, empty host application", powershell_4103(CONTEXT.replace(
        "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -NoP  ", ""), NEW_INBOX_RULE), True),
    ("4103, no payload", powershell_4103(CONTEXT, None), True),
    ("4103, empty payload", powershell_4103(CONTEXT, ""), True),
    ("4103, no context", powershell_4103(None, NEW_INBOX_RULE), True),
    ("4103, context with a no-break space", powershell_4103(CONTEXT.replace("User =", "User\u00a0="), NEW_INBOX_RULE),
     False),
    ("800, inbox rule", powershell_800(["New-InboxRule -Name hide", "\tUserId=CORP\\jdoe\r\n\tHostApplication=pwsh",
                                        NEW_INBOX_RULE]), True),
    ("800, no details", powershell_800(["Get-Date", "\tUserId=CORP\\jdoe\r\n"]), True),
    ("800, a number among the data", powershell_800(["Get-Date", 5, NEW_INBOX_RULE]), False),
]


def read_jsonl_lenient(records: list[dict]) -> tuple[list[dict], list[tuple[str, str]]]:
    """The records as ``evtx_dump`` JSONL: their events (without the original text) and the rejections."""
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    ctx = ReadContext("records.jsonl", "0" * 64)
    rows = pa.concat_tables(list(identify(data[:65536]).read(io.BufferedReader(io.BytesIO(data)), ctx))).to_pylist()
    events = sorted(({k: v for k, v in r.items() if k != "event.original"} for r in rows),
                    key=lambda r: (r["log.record"], r["event.action"] or ""))
    return events, sorted((r.locator, r.reason) for r in ctx.rejections)


def read_jsonl(records: list[dict]) -> list[dict]:
    events, rejections = read_jsonl_lenient(records)
    assert not rejections
    return events


@pytest.mark.parametrize("name, record, in_sql", VARIANTS, ids=[v[0] for v in VARIANTS])
def test_sql_maps_the_record_as_python_does(name, record, in_sql, monkeypatch):
    in_python = read_jsonl([record])
    monkeypatch.setattr(windows_stream, "SQL_MIN_RECORDS", 1)
    assert read_jsonl([record]) == in_python
    text = orjson.dumps(record).decode()
    _, needs_python = WindowsNormalizer().normalize(text_array([text]), pa.array([1], pa.int64()), "v", "0" * 64)
    assert needs_python == [not in_sql]


def test_a_batch_of_all_variants_maps_as_record_by_record(monkeypatch):
    """Distinct cmdlet and pipeline texts are mapped once per batch and joined back to every record that has them."""
    records = [v[1] for v in VARIANTS] * 3
    in_python = read_jsonl(records)
    monkeypatch.setattr(windows_stream, "SQL_MIN_RECORDS", 1)
    assert read_jsonl(records) == in_python


def test_an_inbox_rule_from_a_4103_record_names_its_mailbox_and_rule():
    [event] = read_jsonl([powershell_4103(CONTEXT, NEW_INBOX_RULE)])
    assert (event["event.action"], event["user.name"], event["user.domain"]) == ("New-InboxRule", "jdoe", "CORP")
    assert (event["user.target.name"], event["rule.name"]) == ("ceo@corp.example", "hide")
    assert dict(event["params"])["deletemessage"] == "True"


@pytest.mark.parametrize("sql_min_records", [windows_stream.SQL_MIN_RECORDS, 1], ids=["python", "sql"])
def test_a_parameter_given_twice_is_stored_with_its_first_value(tmp_path, sql_min_records, monkeypatch):
    """``-Identity a -identity b`` is legal PowerShell; it used to stop the whole file's load (a map column
    cannot hold a name twice), which anyone able to run a cmdlet could use to hide the rest of the log."""
    monkeypatch.setattr(windows_stream, "SQL_MIN_RECORDS", sql_min_records)
    twice = cmdlet(["Set-Mailbox", '-Identity "ceo" -identity "other" -AuditEnabled "False"', "CORP\\admin"])
    export = cmdlet(["New-MailboxExportRequest", '-Mailbox "ceo" -FilePath "\\\\x\\c$\\a.pst"', "CORP\\admin"])
    export["Event"]["System"]["EventRecordID"] += 1
    evidence = tmp_path / "exch01.jsonl"
    evidence.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in (twice, export)))
    result = hunt([evidence], tmp_path / "case", Config())
    [summary] = result.inputs
    assert (summary.records, summary.rejected, summary.new_events) == (2, 0, 2)
    with duckdb.connect(str(tmp_path / "case" / "case.duckdb"), read_only=True) as db:
        params, target = db.execute('SELECT params, "user.target.name" FROM events WHERE "event.action" = ?',
                                    ["Set-Mailbox"]).fetchall()[0]
    assert params == {"identity": "ceo", "auditenabled": "False"} and target == "ceo"


TRICKY_TEXT = ["", "-", "x" * 3000, "\x00", "a\u2028b", "CORP\\", "\\", "0x1F", "9" * 30, "NT AUTHORITY",
               "2021-13-45T99:99:99Z", "-Identity a -Identity b", 'CommandInvocation(A): "A"\nCommandInvocation(B): "B"',
               'CommandInvocation(New-InboxRule): "x"\nParameterBinding(New-InboxRule): name="Name"; value="a"',
               "User = \nHost Application = ", "\u00a0User = a\\b", "\u00fcn\u00efc\u00f6d\u00e9", "S-1-5-18", "w3wp$"]


def string_leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from string_leaves(value, path + (key,))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from string_leaves(value, path + (index,))
    elif isinstance(node, str):
        yield path


def test_any_text_in_any_field_maps_the_same_in_sql_and_record_by_record(monkeypatch):
    """Attacker-written text can sit in any string of a record: replaced at random (fixed seed) in the public
    samples' records and the variants above, the SQL mapping must still agree with the Python one."""
    rnd = random.Random(11)
    base = [orjson.loads(r["data"]) for path in sorted(glob.glob(str(PUBLIC / "evtx-*" / "*.evtx")))
            for r in PyEvtxParser(path).records_json()] + [v[1] for v in VARIANTS]
    records = []
    for _ in range(600):
        record = copy.deepcopy(rnd.choice(base))
        for _ in range(rnd.randint(1, 3)):
            *parents, last = rnd.choice(list(string_leaves(record)))
            node = record
            for key in parents:
                node = node[key]
            node[last] = rnd.choice(TRICKY_TEXT)
        records.append(record)
    in_python = read_jsonl_lenient(records)
    monkeypatch.setattr(windows_stream, "SQL_MIN_RECORDS", 1)
    assert read_jsonl_lenient(records) == in_python
