"""What mail a transport or inbox rule acts on, from the cmdlet parameters that created or changed it.

Only conditions a message trace can show are taken: words of the subject
(``SubjectContainsWords``, ``SubjectOrBodyContainsWords``; the body itself is
not in the trace, so a body-only condition leaves the rule without a subject
filter) and the sender (``FromAddressContainsWords``, ``From``,
``SenderDomainIs``). ``...MatchesPatterns`` values are regular expressions
written by whoever made the rule: they are never run; their literal words (three
characters or more) are used as words instead. Multi-valued parameters are
split on ``,`` and ``;``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

SUBJECT_WORDS = ("subjectcontainswords", "subjectorbodycontainswords")
SUBJECT_PATTERNS = ("subjectmatchespatterns", "subjectorbodymatchespatterns")
SENDER_WORDS = ("fromaddresscontainswords", "from", "senderdomainis", "fromaddress")
SENDER_PATTERNS = ("fromaddressmatchespatterns",)
_LITERAL = re.compile(r"[A-Za-z0-9@.\-_]{3,}")


def _values(text: str) -> list[str]:
    return [v.strip().strip('"\'').strip() for v in re.split(r"[;,]", text) if v.strip().strip('"\'').strip()]


def _literals(text: str) -> list[str]:
    return [w for w in _LITERAL.findall(text.replace("\\.", ".")) if any(c.isalpha() for c in w)]


@dataclass
class MailConditions:
    subject_words: list[str] = field(default_factory=list)
    sender_words: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.subject_words and not self.sender_words

    def add(self, params: dict[str, str]) -> None:
        for name, value in params.items():
            if not value:
                continue
            if name in SUBJECT_WORDS:
                self.subject_words += [v for v in _values(value) if v.lower() not in map(str.lower, self.subject_words)]
            elif name in SUBJECT_PATTERNS:
                self.subject_words += [v for v in _literals(value) if v.lower() not in map(str.lower, self.subject_words)]
            elif name in SENDER_WORDS:
                self.sender_words += [v for v in _values(value) if v.lower() not in map(str.lower, self.sender_words)]
            elif name in SENDER_PATTERNS:
                self.sender_words += [v for v in _literals(value) if v.lower() not in map(str.lower, self.sender_words)]

    def matches(self, subject: str | None, sender: str | None) -> bool:
        """True when the message meets every kind of condition the rule has (any word of each kind)."""
        if self.subject_words:
            text = (subject or "").lower()
            if not any(w.lower() in text for w in self.subject_words):
                return False
        if self.sender_words:
            address = (sender or "").lower()
            if not any(w.lower().lstrip("@") in address for w in self.sender_words):
                return False
        return True

    def describe(self) -> str:
        parts = []
        if self.subject_words:
            parts.append("subject words " + ", ".join(f"'{w}'" for w in self.subject_words))
        if self.sender_words:
            parts.append("sender " + ", ".join(f"'{w}'" for w in self.sender_words))
        return " and ".join(parts) or "no subject or sender condition"
