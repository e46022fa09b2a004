"""Is a sender's domain made to look like one of the organization's own?

A domain is compared with each organization domain by its name part (the
labels before the public suffix: ``fabrikam`` of ``fabrikam.com`` and of
``fabrikam.co.uk``). It is a lookalike when it is not the organization domain
or one of its subdomains, and

- ``homoglyph``: its name reads the same once look-alike characters are
  folded (``rn``→``m``, ``vv``→``w``, ``cl``→``d``, ``0``→``o``, ``1``→``l``,
  ``3``→``e``, ``5``→``s``, Cyrillic/Greek letters that look Latin, IDN
  ``xn--`` names decoded first); the same name under another suffix
  (``fabrikam.co``) counts here too;
- ``edit_distance``: its name is one edit away (two for names of nine
  characters or more; a swap of neighbours is one edit), names of five
  characters or more only;
- ``added_words``: it holds the organization's name plus words
  (``fabrikam-support.com``, ``fabrikamlabs.net``, ``secure-fabrikam.com``);
- ``org_domain_as_label``: the organization's domain sits inside another
  domain (``fabrikam.com.mail-check.net``).

Only the domain is judged; the display name and the local part are not.
"""

from __future__ import annotations

from dataclasses import dataclass

# Second-level labels under which names are registered (co.uk, com.au ...);
# enough for the name part, not a full public suffix list.
_SECOND_LEVEL = {"co", "com", "net", "org", "gov", "ac", "edu", "ne", "or", "go", "gv", "ltd", "plc"}
_SEQUENCES = (("rn", "m"), ("vv", "w"), ("cl", "d"))
_CHARACTERS = str.maketrans({"0": "o", "1": "l", "3": "e", "5": "s", "|": "l",
                             "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i",
                             "ј": "j", "ѕ": "s", "ԁ": "d", "һ": "h", "ӏ": "l", "ɩ": "l",
                             "α": "a", "ο": "o", "ρ": "p", "ν": "v", "κ": "k", "τ": "t", "ι": "i"})


@dataclass(frozen=True)
class Lookalike:
    domain: str
    org_domain: str
    kind: str

    def describe(self) -> str:
        what = {"homoglyph": "reads like", "edit_distance": "is a typo of",
                "added_words": "adds words to", "org_domain_as_label": "wraps"}[self.kind]
        return f"{self.domain} {what} {self.org_domain}"


def _decode(domain: str) -> str:
    labels = []
    for label in domain.strip().strip(".").lower().split("."):
        if label.startswith("xn--"):
            try:
                label = label.encode("ascii").decode("idna")
            except UnicodeError:
                pass
        labels.append(label)
    return ".".join(labels)


def split_name(domain: str) -> tuple[str, str]:
    """(name part, suffix): ``mail.fabrikam.co.uk`` → (``mail.fabrikam``, ``co.uk``)."""
    labels = domain.split(".")
    if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2:
        return ".".join(labels[:-2]), ".".join(labels[-2:])
    if len(labels) >= 2:
        return ".".join(labels[:-1]), labels[-1]
    return domain, ""


def registered_name(domain: str) -> str:
    """The label registered under the suffix: ``fabrikam`` of ``mail.fabrikam.com``."""
    return split_name(domain)[0].rsplit(".", 1)[-1]


def fold(name: str) -> str:
    """``name`` with look-alike characters replaced by what they imitate."""
    text = name.translate(_CHARACTERS)
    for sequence, letter in _SEQUENCES:
        text = text.replace(sequence, letter)
    return text


def edit_distance(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions, swaps of neighbours."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def is_own(domain: str, org_domains: tuple[str, ...]) -> bool:
    value = _decode(domain)
    return any(value == org or value.endswith("." + org) for org in org_domains)


def lookalike(domain: str, org_domains: tuple[str, ...]) -> Lookalike | None:
    """How ``domain`` imitates one of ``org_domains``, or None."""
    value = _decode(domain)
    if not value or "." not in value or is_own(value, org_domains):
        return None
    name = registered_name(value)
    folded = fold(name)
    for org in org_domains:
        org_name = registered_name(org)
        if len(org_name) < 3:
            continue
        if folded == fold(org_name):
            return Lookalike(value, org, "homoglyph")
        if len(org_name) >= 5 and edit_distance(folded, fold(org_name)) <= (2 if len(org_name) >= 9 else 1):
            return Lookalike(value, org, "edit_distance")
        if len(org_name) >= 4 and fold(org_name) in folded:
            return Lookalike(value, org, "added_words")
        if f".{org}." in f".{value}.":
            return Lookalike(value, org, "org_domain_as_label")
    return None
