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
[some_future_section]
anything = 1
'''))
    assert config.domains == ("fabrikam-labs.com",)
    assert config.home_countries == ("US",)
    assert config.admins == ("compliance-admin@fabrikam-labs.com",)
    [window] = config.change_windows
    assert window.start == datetime(2026, 10, 3, 22, 0) and window.end == datetime(2026, 10, 4, 0, 0)
    assert window.ticket == "CHG-2041"
    assert config.bulk_delete_per_hour == 20 and config.export_deletion_window_seconds == 6 * 3600
    assert config.identities == {"CORP\\jsmith": "jsmith@fabrikam-labs.com"}


@pytest.mark.parametrize("text, fragment", [
    ("[tuning\nx=1", "invalid TOML"),
    ("[tuning]\nbulk_delete_per_hour = 'many'", "tuning.bulk_delete_per_hour"),
    ("[tuning]\nexport_deletion_window = 'a day'", "tuning.export_deletion_window"),
    ("[authorized]\nadmins = 'root'", "authorized.admins"),
    ("[identities]\njsmith = 3", "identities"),
    ("[[change_windows]]\nstart = '2026-10-03T22:00:00'\nend = '2026-10-04T02:00:00Z'", "no time zone"),
])
def test_invalid_config_names_the_problem(tmp_path, text, fragment):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text))
    assert fragment in str(info.value)
