"""findings.ocsf.jsonl: every finding an OCSF Detection Finding that validates against the OCSF 1.8.0 schema."""

import json

import jsonschema
import pytest
from ocsf_json_schema import OcsfJsonSchemaEmbedded, get_ocsf_schema

from mailhunt.case.ocsf import OCSF_VERSION, detection_finding
from mailhunt.config import load_config
from mailhunt.hunt import hunt
from tests.corpus import EXAMPLES


@pytest.fixture(scope="module")
def validator():
    schema = OcsfJsonSchemaEmbedded(get_ocsf_schema(OCSF_VERSION)).get_class_schema("detection_finding")
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    incident = EXAMPLES / "incident-2026-10"
    out = tmp_path_factory.mktemp("ocsf") / "case"
    hunt([incident / "purview_audit_export.csv"], out, load_config(incident / "mailhunt.toml"))
    return out


def test_every_finding_of_the_example_is_a_valid_detection_finding(case, validator):
    document = json.loads((case / "findings.json").read_text())
    lines = (case / "findings.ocsf.jsonl").read_text().splitlines()
    assert len(lines) == len(document["findings"]) > 0
    for line, finding in zip(lines, document["findings"], strict=True):
        event = json.loads(line)
        errors = [f"{e.json_path}: {e.message}" for e in validator.iter_errors(event)]
        assert errors == []
        assert event["class_uid"] == 2004 and event["type_uid"] == 200401
        assert event["finding_info"]["uid"] == finding["id"]
        assert event["is_alert"] is finding["escalate"]
        assert event["count"] == finding["event_count"]
    attack = json.loads(lines[[f["indicator"] for f in document["findings"]].index("export_then_deletion")])
    assert attack["severity_id"] == 5 and attack["severity"] == "Critical"
    assert {"technique": {"uid": "T1070.008"}} in attack["finding_info"]["attacks"]
    assert attack["remediation"]["desc"].startswith("1. Invalidates every refresh token")


def test_the_validator_rejects_what_ocsf_does_not_allow(validator):
    finding = {"id": "mh-1", "indicator": "mailbox_export", "severity": "high", "rule": {"id": "r", "title": "t"},
               "first_seen": "2026-10-13T23:18:03Z", "last_seen": "2026-10-13T23:26:15Z", "event_count": 2}
    event = detection_finding(finding, "0")
    assert list(validator.iter_errors(event)) == []
    assert list(validator.iter_errors({**event, "severity_id": "high"}))
    assert list(validator.iter_errors({k: v for k, v in event.items() if k != "finding_info"}))


def test_hostile_strings_stay_data(validator):
    hostile = "<img src=x onerror=alert(1)> a'; Remove-Mailbox -Identity * ;'\n\"}"
    finding = {"id": "mh-2", "indicator": "inbox_rule_hiding", "severity": "high",
               "rule": {"id": "r", "title": hostile}, "reasons": [hostile], "first_seen": "2026-10-13T23:18:03Z",
               "last_seen": "2026-10-13T23:18:03Z", "event_count": 1}
    event = detection_finding(finding, "0")
    assert list(validator.iter_errors(event)) == []
    assert json.loads(json.dumps(event))["message"] == hostile
