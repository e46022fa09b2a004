from datetime import datetime

import pytest

from mailhunt.config import ConfigError, load_config


def write(tmp_path, text):
    path = tmp_path / "mailhunt.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_absent_config_gives_defaults():
    config = load_config(None)
    assert config.admins == () and config.bulk_delete_per_hour == 50
    assert config.export_deletion_window_seconds == 86400


def test_full_config_is_read(tmp_path):
    config = load_config(write(tmp_path, '''
[organization]
domains = ["Fabrikam-Labs.com"]
home_countries = ["us"]
[authorized]
admins = ["Compliance-Admin@fabrikam-labs.com"]
[[change_windows]]
start = "2026-10-03T22:00:00Z"
end = "2026-10-04T02:00:00+02:00"
ticket = "CHG-2041"
actors = ["compliance-admin@fabrikam-labs.com"]
[tuning]
bulk_delete_per_hour = 20
export_deletion_window = "6h"
[identities]
"CORP\\\\jsmith" = "jsmith@fabrikam-labs.com"
[iocs]
ips = ["45.155.205.7"]
app_ids = ["D3590ED6-52B3-4102-AEFF-AAD2292AB01C"]
'''))
    assert config.domains == ("fabrikam-labs.com",)
    assert config.home_countries == ("US",)
    assert config.admins == ("compliance-admin@fabrikam-labs.com",)
    [window] = config.change_windows
    assert window.start == datetime(2026, 10, 3, 22, 0) and window.end == datetime(2026, 10, 4, 0, 0)
    assert window.ticket == "CHG-2041"
    assert config.bulk_delete_per_hour == 20 and config.export_deletion_window_seconds == 6 * 3600
    assert config.identities == {"CORP\\jsmith": "jsmith@fabrikam-labs.com"}
    assert config.iocs.ips == ("45.155.205.7",) and config.iocs.app_ids == ("d3590ed6-52b3-4102-aeff-aad2292ab01c",)


@pytest.mark.parametrize("text, fragment", [
    ("[tuning\nx=1", "invalid TOML"),
    ("[tuning]\nbulk_delete_per_hour = 'many'", "tuning.bulk_delete_per_hour"),
    ("[tuning]\nexport_deletion_window = 'a day'", "tuning.export_deletion_window"),
    ("[authorized]\nadmins = 'root'", "authorized.admins"),
    ("[identities]\njsmith = 3", "identities"),
    ("[[change_windows]]\nstart = '2026-10-03T22:00:00'\nend = '2026-10-04T02:00:00Z'", "no time zone"),
    ("[[change_windows]]\nstart = '2026-10-04T22:00:00Z'\nend = '2026-10-04T02:00:00Z'", "change_windows[0].end: is not after"),
    ("[[change_windows]]\nstart = '2026-10-03T22:00:00Z'", "change_windows[0]: needs start and end (end missing)"),
    ("[[change_windows]]\nstart = '2026-10-03T22:00:00Z'\nend = '2026-10-04T02:00:00Z'\ntickt = 'CHG-1'",
     "change_windows[0].tickt: unknown key; did you mean 'ticket'?"),
    ("[some_future_section]\nanything = 1", "some_future_section: unknown key"),
    ("[tuning]\nbulk_delete_per_hr = 5", "tuning.bulk_delete_per_hr: unknown key; did you mean 'bulk_delete_per_hour'?"),
    ("[tuning]\ninclude_system_accounts = 'yes'", "tuning.include_system_accounts: expected true or false"),
    ("[authorized]\nautomation = [{ acount = 'svc@x.com' }]",
     "authorized.automation[0].acount: unknown key; did you mean 'account'?"),
    ("[authorized]\nautomation = [{ account = 'svc@x.com', script_sha256 = 'abc' }]",
     "authorized.automation[0].script_sha256: expected 64 hexadecimal digits"),
    ("[authorized]\nautomation = [{ account = 'svc@x.com', command_pattern = '(unclosed' }]",
     "authorized.automation[0].command_pattern: '(unclosed' is not a valid regular expression"),
    ("[authorized]\nautomation = [{ command_pattern = 'Search-Mailbox' }]",
     "authorized.automation[0]: needs an account or an app_id"),
    ("[authorized]\nautomation = 'svc'", "authorized.automation: expected a list of tables"),
    ("[organization]\ntrusted_networks = ['10.0.0.0/33']", "organization.trusted_networks: '10.0.0.0/33' is not an IP network"),
    ("[organization]\nhome_countries = ['USA']", "organization.home_countries: 'USA' is not a two-letter"),
    ("[iocs]\nip = ['1.2.3.4']", "iocs.ip: unknown key; did you mean 'ips'?"),
    ("organization = 3", "organization: expected a table"),
])
def test_invalid_config_names_the_problem(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert fragment in str(info.value)


def test_automation_entries_and_trusted_networks_are_kept(tmp_path):
    config = load_config(write(tmp_path, '''
[organization]
trusted_networks = ["198.51.100.0/24"]
[authorized]
automation = [ { account = "SVC-Retention@fabrikam-labs.com", app_id = "0F4E2A6C-1111-4B2B-9C11-5A0B2F7E9D01", command_pattern = "^Search-Mailbox .*-DeleteContent", script_sha256 = "''' + "AB" * 32 + '''" } ]
'''))
    [entry] = config.automation
    assert entry == {"account": "svc-retention@fabrikam-labs.com", "app_id": "0f4e2a6c-1111-4b2b-9c11-5a0b2f7e9d01",
                     "command_pattern": "^Search-Mailbox .*-DeleteContent", "script_sha256": "ab" * 32}
    assert config.in_trusted_network("198.51.100.7") is True
    assert config.in_trusted_network("203.0.113.9") is False
    assert config.in_trusted_network("not-an-ip") is None
    assert load_config(None).in_trusted_network("198.51.100.7") is None
