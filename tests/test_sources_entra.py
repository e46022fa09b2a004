"""Entra ID sign-in log readers on fixtures in the admin center's JSON and CSV download formats."""

from datetime import datetime
from pathlib import Path

from tests.test_sources_m365 import read

FIXTURES = Path(__file__).parent / "fixtures" / "entra"


def test_json_download_maps_outcome_country_app_and_user():
    name, events, ctx = read(FIXTURES / "signins.json")
    assert name == "entra_signin_json"
    assert (ctx.records, len(events), ctx.rejected) == (4, 3, 1)
    assert ctx.rejections[0].locator == "record 3" and "no time zone" in ctx.rejections[0].reason
    admin, attacker, interrupted = events
    assert interrupted["event.outcome"] == "unknown" and interrupted["event.code"] == "50076"
    assert interrupted["user.name"] == "adele.vance@fabrikam-labs.com" and interrupted["log.record"] == 4
    assert admin["event.dataset"] == "entra.signin" and admin["event.action"] == "Sign-in activity"
    assert admin["@timestamp"] == datetime(2026, 10, 12, 8, 2, 11, 483916)
    assert admin["user.name"] == "compliance-admin@fabrikam-labs.com"
    assert admin["event.outcome"] == "success" and admin["event.code"] == "0"
    assert admin["app.id"] == "fb78d390-0c51-40cd-8e17-fdbfab77341b"
    assert admin["source.geo.country_iso_code"] == "US" and admin["source.ip"] == "198.51.100.24"
    assert dict(admin["labels"])["asn"] == "7018"
    assert attacker["event.outcome"] == "failure" and attacker["event.code"] == "50126"
    assert attacker["source.geo.country_iso_code"] == "NL" and attacker["user_agent.original"] == "AADInternals"
    assert attacker["log.record"] == 2 and '"AADInternals"' in attacker["event.original"]


def test_csv_download_maps_the_same_fields_and_rejects_bad_rows():
    name, events, ctx = read(FIXTURES / "signins.csv")
    assert name == "entra_signin_csv"
    assert (ctx.records, len(events), ctx.rejected) == (4, 2, 2)
    reasons = {r.locator: r.reason for r in ctx.rejections}
    assert "not ISO-8601" in reasons["line 4"] and "fields where the header has" in reasons["line 5"]
    admin, attacker = events
    assert admin["@timestamp"] == datetime(2026, 10, 12, 8, 2, 11)
    assert admin["user.name"] == "compliance-admin@fabrikam-labs.com" and admin["event.outcome"] == "success"
    assert admin["event.code"] is None          # written as "None" by the download
    assert admin["app.id"] == "80ccca67-54bd-44ab-8625-4b79c4dc7775"
    assert admin["source.geo.country_iso_code"] == "US"
    assert attacker["event.outcome"] == "failure" and attacker["event.code"] == "50126"
    assert attacker["source.geo.country_iso_code"] == "NL" and dict(attacker["labels"])["asn"] == "49505"
    assert attacker["log.record"] == 3 and attacker["event.original"].startswith("2026-10-12T09:40:57Z,")


def test_csv_rows_without_a_date_column_are_rejected_not_a_crash():
    import io

    from mailhunt.sources.base import ReadContext
    from mailhunt.sources.entra_signin import EntraSignInCsv

    text = ("Request ID,Username,IP address,Status\n"
            "4f1c,adele.vance@fabrikam-labs.com,198.51.100.24,Success\n")
    ctx = ReadContext("signins.csv", "0" * 64)
    tables = list(EntraSignInCsv().read(io.BytesIO(text.encode()), ctx))
    assert tables == [] and ctx.records == 1 and ctx.rejected == 1
    assert ctx.rejections[0].locator == "line 2" and "no Date (UTC) or Date column" in ctx.rejections[0].reason
