"""Hostile Sigma rule sets and a small audit export to hunt them over, shared by the hostile-rule tests.

The evidence is taken from the example incident's Purview audit export (its
last two days, the actor's), plus one real-format inbox-rule record whose
parameters name "Sean O'Brien" and say "it's archived": the record a rule with
an apostrophe must find.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import yaml

EXAMPLE_EXPORT = Path(__file__).resolve().parents[2] / "examples" / "incident-2026-10" / "purview_audit_export.csv"
OBRIEN_RECORD_ID = "5d1f3c2a-7b4e-4f60-9a1d-0c2b3e4f5a6b"
SECRET = "SECRET-CANARY-5b0d1e"


def write_evidence(path: Path) -> Path:
    """The actor's two days of the example export, and the O'Brien inbox rule (a copy of one of the
    export's own New-InboxRule records with a new id and parameters)."""
    with EXAMPLE_EXPORT.open(newline="", encoding="utf-8-sig") as stream:
        rows = list(csv.reader(stream))
    header, body = rows[0], rows[1:]
    kept = [row for row in body if row[1].startswith(("10/13/2026", "10/14/2026"))]
    template = next(row for row in body if row[3] == "New-InboxRule" and row[4].startswith("b.jones"))
    audit = json.loads(template[5])
    audit["Id"] = OBRIEN_RECORD_ID
    audit["Parameters"] = [{"Name": "From", "Value": "sean.obrien@contoso-news.example"},
                           {"Name": "Name", "Value": "From Sean O'Brien - it's archived"},
                           {"Name": "MoveToFolder", "Value": "Newsletters"}]
    obrien = [OBRIEN_RECORD_ID, template[1], template[2], template[3], template[4],
              json.dumps(audit, separators=(",", ":")), "", ""]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([*kept, obrien])
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


def _rule(name: str, detection: dict, number: int, product: str = "m365", service: str = "audit") -> dict:
    return {
        "title": f"hostile test rule {name}",
        "id": f"00000000-0000-4000-8000-{number:012d}",
        "name": name,
        "status": "experimental",
        "logsource": {"product": product, "service": service},
        "detection": detection,
        "level": "low",
    }


def malicious_rules(canary: Path) -> dict[str, dict]:
    """Rules whose values try to leave their SQL literal and touch files in ``canary``.

    The first one is built against the statement that ran every condition at
    once before the fix, where a backslash before the quote ended the literal:
    it closes that statement where the value first occurs, opens a
    dollar-quoted string that runs to where the value occurs a second time,
    and from there copies ``canary/secret.csv`` to ``canary/stolen.csv``. A
    Sigma ``?`` (a LIKE ``_``) spells the underscores, which the pattern
    conversion would have escaped."""
    secret, stolen = canary / "secret.csv", canary / "stolen.csv"
    breakout = ("a', false) THEN 0 END], lambda x: x IS NOT NULL)) AS $z$ "
                "FROM detection?events) h, matches r WHERE false; "
                f"COPY (SELECT content FROM read?text($f${secret}$f$)) TO $f${stolen}$f$; SELECT 1 FROM matches h --")
    return {
        "a_copy_breakout": _rule("a_copy_breakout", {"sel": {"Parameters|contains": breakout},
                                                     "condition": "sel"}, 1),
        "b_dollar_read_text": _rule("b_dollar_read_text", {
            "keywords": [f"$q$' || (SELECT content FROM read_text('{secret}')) || '$q$"],
            "condition": "keywords"}, 2),
        "c_chr_copy": _rule("c_chr_copy", {"sel": {"Operation": f"x'); COPY (SELECT chr(65)) TO '{canary}/chr.csv'; --"},
                                           "condition": "sel"}, 3),
        "d_attach": _rule("d_attach", {"sel": {"Parameters|endswith": f"'; ATTACH '{canary}/attached.duckdb' AS evil; --"},
                                       "condition": "sel"}, 4),
        "e_install_load": _rule("e_install_load", {
            "sel": {"Parameters|startswith": f"'); INSTALL httpfs; LOAD '{canary}/evil.duckdb_extension'; --"},
            "condition": "sel"}, 5),
        "f_map_key": _rule("f_map_key", {"sel": {f"params.x']; COPY (SELECT 1) TO '{canary}/key.csv'; --": "y"},
                                         "condition": "sel"}, 6),
        # A lookahead is a valid Python regex (pySigma accepts the rule) that RE2 refuses: the rule
        # compiles and passes the check, and fails only when DuckDB runs it.
        "g_regex_runtime_failure": _rule("g_regex_runtime_failure", {
            "sel": {"Parameters|re": f"(?=x)'; COPY \\(SELECT 1\\) TO '{canary}/re.csv'; --"}, "condition": "sel"}, 7),
        "h_unknown_field": _rule("h_unknown_field", {"sel": {"Evil'Field|contains": "x"}, "condition": "sel"}, 8),
        "i_correlation_on_failure": {
            "title": "hostile test correlation over a rule that fails", "id": "00000000-0000-4000-8000-000000000009",
            "name": "i_correlation_on_failure", "status": "experimental",
            "correlation": {"type": "event_count", "rules": ["g_regex_runtime_failure"], "group-by": ["UserId"],
                            "timespan": "1h", "condition": {"gte": 1}},
            "level": "low",
        },
    }


def apostrophe_rules() -> dict[str, dict]:
    """Rules with an apostrophe in a value, as SigmaHQ has: each must find the O'Brien record."""
    return {
        "obrien_contains": _rule("obrien_contains", {"sel": {"Parameters|contains": "O'Brien"}, "condition": "sel"}, 20),
        "its_keyword": _rule("its_keyword", {"keywords": ["it's archived"], "condition": "keywords"}, 21),
    }


def write_rules(directory: Path, rules: dict[str, dict]) -> Path:
    """Each rule as a YAML file of its own, as a rule set downloaded from the internet comes."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, rule in rules.items():
        (directory / f"{name}.yml").write_text(yaml.safe_dump(rule, sort_keys=False, allow_unicode=True),
                                              encoding="utf-8")
    return directory
