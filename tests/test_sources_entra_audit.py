"""Entra ID audit and sign-in evidence as responders receive it: the OTRF Sentinel AuditLogs sample, and
fixtures in the exact forms of ``az monitor log-analytics query``, the Log Analytics portal's CSV export and
the Entra admin center's audit log downloads."""

import io
from datetime import datetime
from pathlib import Path

import pytest

from mailhunt.sources import SNIFF_BYTES, identify
from mailhunt.sources.base import ReadContext
from mailhunt.sources.sentinel_entra import SentinelEntraCsv
from tests.corpus import PUBLIC
from tests.test_sources_m365 import read

FIXTURES = Path(__file__).parent / "fixtures" / "entra"
OTRF_AUDIT = PUBLIC / "otrf-security-datasets" / "GoldenSAMLADFSMailAccess_AADAuditEvents.json"


def _reasons(ctx) -> dict[str, str]:
    return {r.locator: r.reason for r in ctx.rejections}


def test_real_otrf_sentinel_auditlogs_rows():
    name, events, ctx = read(OTRF_AUDIT)
    assert name == "sentinel_entra"
    assert (ctx.records, len(events), ctx.rejected) == (4, 4, 0)
    assert [e["event.action"] for e in events] == [
        "Update application – Certificates and secrets management", "Update application – Certificates and secrets management",
        "Update application", "Add delegated permission grant"]
    assert {e["event.dataset"] for e in events} == {"entra.audit"}
    assert {e["user.name"] for e in events} == {"pgustavo@simulandlabs.com"}
    # the same audit record twice (the query expanded it per modified property): one event id, stored once
    assert events[0]["event.id"] == events[1]["event.id"] != events[2]["event.id"]
    grant = events[3]
    assert grant["@timestamp"] == datetime(2021, 8, 2, 13, 27, 20, 17000)
    assert grant["event.outcome"] == "success" and grant["user.id"] == "aead923d-498b-4f64-a66c-2af91447a8b6"
    assert grant["params"]["scopes"] == "User.Read Mail.ReadWrite"
    assert grant["params"]["delegatedpermissiongrant.scope"] == "User.Read Mail.ReadWrite"
    # the grantee is named only by its service principal object id; the first target is the API (Microsoft Graph)
    assert grant["user.target.name"] == "0d2f5969-011b-460d-ac74-3291d227d49f"
    assert grant["app.id"] is None
    labels = dict(grant["labels"])
    assert labels["service_principal_id"] == "0d2f5969-011b-460d-ac74-3291d227d49f"
    assert labels["category"] == "ApplicationManagement" and labels["table"] == "AuditLogs"
    assert grant["user_agent.original"].endswith("WindowsPowerShell/5.1.17763.1971")
    assert grant["log.record"] == 4 and '"Add delegated permission grant"' in grant["event.original"]
    secret = events[0]
    assert secret["user.target.name"] == "SimuLandApp" and secret["params"]["included updated properties"] == "KeyDescription"


def test_az_cli_query_output_with_text_cells_and_none():
    name, events, ctx = read(FIXTURES / "auditlogs_az_query.json")
    assert name == "sentinel_entra_array"
    assert (ctx.records, len(events), ctx.rejected) == (6, 4, 2)
    reasons = _reasons(ctx)
    assert "has no time zone" in reasons["record 5"]
    assert reasons["record 6"] == "no activity (activityDisplayName / OperationName)"  # "None" is az's empty cell
    consent, reset, update, registered = events
    assert consent["event.action"] == "Consent to application" and consent["user.name"] == "megan.bowen@contoso.com"
    assert consent["app.id"] == "4f8e2a71-3c59-4d0b-a6e8-91b7c2d5f043"
    assert consent["params"]["scopes"] == "Mail.ReadWrite User.Read offline_access"
    assert consent["user.target.name"] == "Mail Sync Pro" and consent["source.ip"] == "203.0.113.45"
    assert consent["@timestamp"] == datetime(2026, 10, 12, 22, 14, 5, 412000)
    assert reset["user.name"] == "adm-helpdesk@contoso.com" and reset["user.target.name"] == "megan.bowen@contoso.com"
    assert dict(reset["labels"])["service"] == "Self-service Password Management"
    assert '-StrongAuthenticationMethod "' in update["parameters"]
    assert update["params"]["strongauthenticationmethod"] == '[{"MethodType":7,"Default":true}]'
    assert registered["event.action"] == "User registered security info"


def test_portal_csv_export_of_auditlogs():
    name, events, ctx = read(FIXTURES / "auditlogs_portal.csv")
    assert name == "sentinel_entra_csv"
    assert (ctx.records, len(events), ctx.rejected) == (4, 3, 1)
    assert "not ISO-8601" in _reasons(ctx)["line 5"]
    change, role, update = events
    assert change["@timestamp"] == datetime(2026, 10, 13, 7, 2, 44, 118000)  # "10/13/2026, 7:02:44.118 AM" [UTC]
    assert role["@timestamp"] == datetime(2026, 10, 13, 13, 40, 51, 903000)
    assert role["params"]["scopes"] == "full_access_as_app"
    assert role["app.id"] == "0c6e94f1-5d28-4b3a-8e71-a2f9d4c03b67"  # the grantee's app id, not the resource API's
    assert role["user.target.name"] == "Archive Connector"
    assert update["user.name"] == "Archive Connector" and update["user.type"] == "service_principal"
    assert update["user.id"] == "882cf3f6-93fc-5fd8-a02c-8a72c4f8f3fe" and update["params"]["strongauthenticationrequirement"] == ""


def test_portal_csv_in_local_time_is_rejected_not_guessed():
    text = ('TimeGenerated [Local Time],OperationName,InitiatedBy,TargetResources,Result,Type\r\n'
            '"10/13/2026, 9:02:44.118 AM",Reset user password,"{""user"":{""userPrincipalName"":""a@contoso.com""}}",[],'
            'success,AuditLogs\r\n')
    source = identify(text.encode()[:SNIFF_BYTES])
    assert isinstance(source, SentinelEntraCsv)
    ctx = ReadContext("auditlogs.csv", "0" * 64)
    assert list(source.read(io.BytesIO(text.encode()), ctx)) == []
    assert (ctx.records, ctx.rejected) == (1, 1)
    assert ctx.rejections[0].locator == "line 2" and "TimeGenerated [Local Time]" in ctx.rejections[0].reason


def test_sentinel_signin_tables_as_ndjson():
    name, events, ctx = read(FIXTURES / "signinlogs.ndjson")
    assert name == "sentinel_entra"
    assert (ctx.records, len(events), ctx.rejected) == (5, 3, 2)
    reasons = _reasons(ctx)
    assert "has no time zone" in reasons["line 2"] and "not valid JSON" in reasons["line 5"]
    failed, interactive, refresh = events
    assert failed["event.dataset"] == "entra.signin" and failed["event.action"] == "Sign-in activity"
    assert failed["event.outcome"] == "failure" and failed["event.code"] == "50126"
    assert dict(failed["labels"])["failure_reason"].startswith("Invalid username or password")
    assert interactive["event.outcome"] == "success" and interactive["source.geo.country_iso_code"] == "NL"
    assert interactive["app.id"] == "4f8e2a71-3c59-4d0b-a6e8-91b7c2d5f043" and interactive["source.ip"] == "45.77.12.9"
    assert dict(interactive["labels"])["location"] == "Amsterdam, Noord-Holland, NL"
    # the non-interactive table keeps Status and LocationDetails as JSON text
    assert refresh["event.outcome"] == "success" and refresh["source.geo.country_iso_code"] == "NL"
    labels = dict(refresh["labels"])
    assert labels["interactive"] == "False" and labels["table"] == "AADNonInteractiveUserSignInLogs"
    assert labels["asn"] == "20473" and refresh["user_agent.original"] == "python-requests/2.32.3"


def test_sentinel_signinlogs_portal_csv():
    name, events, ctx = read(FIXTURES / "signinlogs_portal.csv")
    assert name == "sentinel_entra_csv"
    assert (ctx.records, len(events), ctx.rejected) == (2, 2, 0)
    first = events[0]
    assert first["@timestamp"] == datetime(2026, 10, 1, 8, 2, 11, 483000)
    assert first["user.name"] == "megan.bowen@contoso.com" and first["event.outcome"] == "success"
    assert first["source.geo.country_iso_code"] == "US" and dict(first["labels"])["interactive"] == "True"


def test_admin_center_json_download():
    name, events, ctx = read(FIXTURES / "audit_download.json")
    assert name == "entra_audit_json"
    assert (ctx.records, len(events), ctx.rejected) == (3, 2, 1)
    assert _reasons(ctx)["record 3"] == "no activityDateTime"
    consent, reset = events
    assert consent["@timestamp"] == datetime(2026, 10, 12, 22, 14, 5, 412183)
    assert consent["params"]["scopes"] == "Mail.ReadWrite User.Read offline_access"
    assert consent["app.id"] == "4f8e2a71-3c59-4d0b-a6e8-91b7c2d5f043"
    assert reset["event.outcome"] == "failure" and dict(reset["labels"])["result_reason"] == "User not found"
    assert reset["user.name"] == "Microsoft Azure PowerShell" and reset["user.type"] == "service_principal"
    assert reset["app.id"] == "1950a258-227b-4e31-a9cf-717495945fc2"
    assert reset["user.target.name"] == "megan.bowen@contoso.com"


def test_the_json_download_and_the_sentinel_row_of_one_record_share_an_event_id():
    _, download, _ = read(FIXTURES / "audit_download.json")
    row = {"TimeGenerated": "2026-10-12T22:14:05.412Z", "OperationName": "Consent to application", "InitiatedBy": "{}",
           "TargetResources": "[]", "Id": "Directory_5e0c7b2a-94d1-4f36-a8e2-1b7c3d9f0e64_K3LQ8_40112211",
           "Type": "AuditLogs"}
    from mailhunt.sources.sentinel_entra import RowTimes, row_event

    event = row_event(row, "{}", 1, ReadContext("x", "0" * 64), RowTimes())
    assert event["event.id"] == download[0]["event.id"]


def test_admin_center_csv_download():
    name, events, ctx = read(FIXTURES / "audit_download.csv")
    assert name == "entra_audit_csv"
    assert (ctx.records, len(events), ctx.rejected) == (3, 2, 1)
    assert "not ISO-8601" in _reasons(ctx)["line 4"]
    registered, grant = events
    assert registered["event.action"] == "User registered security info"
    assert registered["@timestamp"] == datetime(2026, 10, 13, 7, 11, 9, 903358)
    assert registered["user.name"] == registered["user.target.name"] == "megan.bowen@contoso.com"
    assert grant["params"]["scopes"] == "Mail.Read Mail.Send" and grant["user.target.name"] == "Archive Connector"
    assert grant["user_agent.original"] == "python-requests/2.32.3" and grant["source.ip"] == "198.51.100.10"
    assert grant["log.record"] == 3


@pytest.mark.parametrize("first_row", [
    b'{"TimeGenerated":"2026-10-13T07:02:44Z","Type":"SecurityEvent","EventID":4624,"Computer":"dc01"}\n',
    b'{"TimeGenerated":"2026-10-13T07:02:44Z","Type":"OfficeActivity","OfficeWorkload":"Exchange","Operation":"x"}\n',
    b'[{"TableName":"PrimaryResult","TimeGenerated":"2026-10-13T07:02:44Z","Type":"Event","EventID":"7036"}]',
])
def test_other_log_analytics_tables_are_not_taken(first_row):
    source = identify(first_row)
    assert source is None or not source.name.startswith(("sentinel_entra", "entra_audit"))
