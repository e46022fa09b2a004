"""The triage policy (``policy.toml``): escalation criteria, their checks, indicator families, tools, threat patterns.

Loaded once and checked on load: an unknown key, a family a check names that
does not exist, an unknown signal or severity, or a regular expression that
does not compile is an error naming the place, so a typo never switches a
criterion off silently.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources

from mailhunt.findings import SEVERITIES

POLICY_FILE = "policy.toml"
SCHEMA = "mailhunt.triage-policy/1"
SIGNALS = ("not_justified", "client", "new_app", "tool", "ioc", "offensive_tool", "answer_yes", "threat_pattern",
           "l1_flag", "other_mailbox", "new_address_logon")
REQUIREMENTS = ("other_mailbox", "sudo")


class PolicyError(ValueError):
    pass


@dataclass(frozen=True)
class Sentence:
    id: str
    text: str


@dataclass(frozen=True)
class Check:
    """One way a criterion can be met: a signal, where it applies, and the severity floor when met."""

    id: str
    signal: str
    severity: str
    indicators: frozenset[str] | None = None
    applies_to: tuple[str, ...] = ()
    unless_justified: bool = False
    reason: str = "{evidence}"
    kinds: tuple[str, ...] = ()
    question: str | None = None
    step: str | None = None
    within_minutes: int = 60
    login_actions: tuple[str, ...] = ()
    auth_methods: tuple[str, ...] = ()
    coinciding_question: str | None = None
    coinciding_reason: str = "; {evidence}"
    coinciding_severity: str | None = None

    def render(self, evidence: str) -> str:
        """The reason text: the check's template with the evidence put in (never formatted: evidence may hold braces)."""
        return self.reason.replace("{evidence}", evidence)

    def applies(self, indicator: str) -> bool:
        return self.indicators is None or indicator in self.indicators


@dataclass(frozen=True)
class Criterion:
    id: str
    sentence: Sentence
    name: str
    clause: str
    checks: tuple[Check, ...]


@dataclass(frozen=True)
class Tool:
    id: str
    description: str
    rules: frozenset[str]
    requires: str | None = None
    process: re.Pattern | None = None


@dataclass(frozen=True)
class ThreatPattern:
    id: str
    description: str
    attack: tuple[str, ...]
    indicators: frozenset[str] = frozenset()
    rules: frozenset[str] = frozenset()
    all_of: tuple[re.Pattern, ...] = ()
    unless_met: str | None = None

    def describe(self) -> str:
        return f"{self.description} ({', '.join(self.attack)})" if self.attack else self.description


@dataclass(frozen=True)
class Adverse:
    l1_steps: tuple[str, ...]
    other_findings: frozenset[str]
    other_findings_hours: int


@dataclass(frozen=True)
class Policy:
    sentences: dict[str, Sentence]
    families: dict[str, tuple[str, ...]]
    criteria: tuple[Criterion, ...]
    tools: tuple[Tool, ...]
    threat_patterns: tuple[ThreatPattern, ...]
    adverse: Adverse
    raw: dict = field(repr=False, default_factory=dict)

    def family(self, name: str) -> tuple[str, ...]:
        return self.families[name]

    @property
    def indicators(self) -> frozenset[str]:
        """Every indicator the policy names."""
        named = {i for members in self.families.values() for i in members}
        named |= {i for p in self.threat_patterns for i in p.indicators}
        return frozenset(named)

    @property
    def rules(self) -> frozenset[str]:
        """Every rule name the policy names."""
        return frozenset({r for t in self.tools for r in t.rules} | {r for p in self.threat_patterns for r in p.rules})


def _keys(table: dict, allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise PolicyError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(allowed))})")


def _severity(value: str | None, where: str) -> str | None:
    if value is not None and value not in SEVERITIES:
        raise PolicyError(f"{where}: severity {value!r} is not one of {', '.join(SEVERITIES)}")
    return value


def _regex(text: str, where: str) -> re.Pattern:
    try:
        return re.compile(text)
    except re.error as exc:
        raise PolicyError(f"{where}: {text!r} is not a valid regular expression ({exc})") from None


def _expand(names: list[str], families: dict[str, tuple[str, ...]]) -> frozenset[str]:
    """Family names become their members; any other name is an indicator."""
    return frozenset(i for n in names for i in families.get(n, (n,)))


CHECK_KEYS = {"id", "signal", "severity", "indicators", "unless_justified", "reason", "kinds", "question", "step",
              "within_minutes", "login_actions", "auth_methods", "coinciding_question", "coinciding_reason", "coinciding_severity"}


def _check(data: dict, families: dict[str, tuple[str, ...]], where: str) -> Check:
    _keys(data, CHECK_KEYS, where)
    if data.get("signal") not in SIGNALS:
        raise PolicyError(f"{where}: signal {data.get('signal')!r} is not one of {', '.join(SIGNALS)}")
    names = data.get("indicators")
    return Check(
        id=data["id"], signal=data["signal"], severity=_severity(data.get("severity", "medium"), where) or "medium",
        indicators=_expand(names, families) if names is not None else None, applies_to=tuple(names or ()),
        unless_justified=bool(data.get("unless_justified", False)), reason=data.get("reason", "{evidence}"),
        kinds=tuple(data.get("kinds", ())), question=data.get("question"), step=data.get("step"),
        within_minutes=int(data.get("within_minutes", 60)), login_actions=tuple(data.get("login_actions", ())),
        auth_methods=tuple(data.get("auth_methods", ())), coinciding_question=data.get("coinciding_question"),
        coinciding_reason=data.get("coinciding_reason", "; {evidence}"),
        coinciding_severity=_severity(data.get("coinciding_severity"), where))


def parse_policy(data: dict) -> Policy:
    _keys(data, {"schema", "sentences", "families", "adverse", "tools", "threat_patterns", "criteria"}, "policy")
    if data.get("schema") != SCHEMA:
        raise PolicyError(f"policy: schema {data.get('schema')!r} is not {SCHEMA}")
    sentences = {s["id"]: Sentence(s["id"], " ".join(s["text"].split())) for s in data["sentences"]}
    families = {name: tuple(members) for name, members in data["families"].items()}
    adverse_data = data.get("adverse", {})
    _keys(adverse_data, {"l1_steps", "other_findings", "other_findings_hours"}, "adverse")
    adverse = Adverse(tuple(adverse_data.get("l1_steps", ())),
                      _expand(adverse_data.get("other_findings", []), families),
                      int(adverse_data.get("other_findings_hours", 72)))
    tools = []
    for index, tool in enumerate(data.get("tools", [])):
        where = f"tools[{index}]"
        _keys(tool, {"id", "description", "rules", "requires", "process"}, where)
        if tool.get("requires") not in (None, *REQUIREMENTS):
            raise PolicyError(f"{where}: requires {tool['requires']!r} is not one of {', '.join(REQUIREMENTS)}")
        tools.append(Tool(tool["id"], tool["description"], frozenset(tool["rules"]), tool.get("requires"),
                          _regex(tool["process"], where) if tool.get("process") else None))
    patterns = []
    for index, pattern in enumerate(data.get("threat_patterns", [])):
        where = f"threat_patterns[{index}]"
        _keys(pattern, {"id", "description", "attack", "indicators", "rules", "all_of", "unless_met"}, where)
        if not pattern.get("indicators") and not pattern.get("rules"):
            raise PolicyError(f"{where}: names neither indicators nor rules")
        patterns.append(ThreatPattern(
            pattern["id"], pattern["description"], tuple(pattern.get("attack", ())),
            _expand(pattern.get("indicators", []), families), frozenset(pattern.get("rules", ())),
            tuple(_regex(r, where) for r in pattern.get("all_of", ())), pattern.get("unless_met")))
    criteria = []
    for index, criterion in enumerate(data["criteria"]):
        where = f"criteria[{index}]"
        _keys(criterion, {"id", "sentence", "name", "clause", "checks"}, where)
        if criterion["sentence"] not in sentences:
            raise PolicyError(f"{where}: sentence {criterion['sentence']!r} is not defined under [[sentences]]")
        sentence = sentences[criterion["sentence"]]
        if criterion["clause"] not in sentence.text:
            raise PolicyError(f"{where}: clause {criterion['clause']!r} is not part of sentence {sentence.id}")
        checks = tuple(_check(c, families, f"{where}.checks[{n}]") for n, c in enumerate(criterion["checks"]))
        criteria.append(Criterion(criterion["id"], sentence, criterion["name"], criterion["clause"], checks))
    ids = [c.id for c in criteria] + [k.id for c in criteria for k in c.checks]
    if len(ids) != len(set(ids)):
        raise PolicyError("policy: criterion and check ids must be unique")
    return Policy(sentences, families, tuple(criteria), tuple(tools), tuple(patterns), adverse, data)


@lru_cache(maxsize=1)
def policy() -> Policy:
    """The shipped policy."""
    text = resources.files("mailhunt.triage").joinpath(POLICY_FILE).read_text("utf-8")
    try:
        return parse_policy(tomllib.loads(text))
    except (KeyError, TypeError) as exc:
        raise PolicyError(f"{POLICY_FILE}: malformed: {exc}") from exc
