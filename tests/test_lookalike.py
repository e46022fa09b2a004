"""Lookalike domains of the organization's own."""

import pytest

from mailhunt.triage.lookalike import edit_distance, is_own, lookalike

ORG = ("fabrikam.com", "fabrikam-labs.com")


@pytest.mark.parametrize("domain, org, kind", [
    ("fabrikarn.com", "fabrikam.com", "homoglyph"),          # rn -> m
    ("fabr1kam.com", "fabrikam.com", "edit_distance"),       # 1 -> l, then one edit from i
    ("fabrikarn.net", "fabrikam.com", "homoglyph"),
    ("fabrikam.co", "fabrikam.com", "homoglyph"),            # the same name under another suffix
    ("fabrikam.co.uk", "fabrikam.com", "homoglyph"),
    ("fabrlkam.com", "fabrikam.com", "edit_distance"),
    ("fabirkam.com", "fabrikam.com", "edit_distance"),       # neighbours swapped
    ("fabrikam-support.com", "fabrikam.com", "added_words"),
    ("fabrikam-labs-support.com", "fabrikam.com", "added_words"),
    ("securefabrikam.net", "fabrikam.com", "added_words"),
    ("xn--fabrikm-7fg.com", "fabrikam.com", "homoglyph"),    # Cyrillic a, written as IDN
    ("fabrik0m.com", "fabrikam.com", "edit_distance"),
])
def test_lookalikes(domain, org, kind):
    found = lookalike(domain, ORG)
    assert found is not None and (found.org_domain, found.kind) == (org, kind), found


@pytest.mark.parametrize("domain", ["fabrikam.com", "mail.fabrikam.com", "FABRIKAM-LABS.COM", "contoso.com",
                                    "gmail.com", "fabulous.com", "", "localhost"])
def test_not_lookalikes(domain):
    assert lookalike(domain, ORG) is None


def test_org_domain_inside_another_domain():
    found = lookalike("fabrikam.com.mail-check.net", ("fabrikam.com",))
    assert found is not None and found.kind in ("added_words", "org_domain_as_label")


def test_helpers():
    assert edit_distance("fabrikam", "fabrikam") == 0 and edit_distance("fabrikam", "fabirkam") == 1
    assert edit_distance("kitten", "sitting") == 3
    assert is_own("eu.fabrikam.com", ORG) and not is_own("notfabrikam.com", ORG)
