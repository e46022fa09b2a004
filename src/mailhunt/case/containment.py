"""The containment plan and the verification request of each finding.

mailhunt never runs a containment step. For each escalated finding it fills the
step templates of ``containment.toml`` (data, not code) with the identities
the finding's events name, quoted for the shell that will run them
(``case/quoting.py``), in the order to run them, each with what it does and
how to undo it (``undo``, a command, and/or ``undo_note``). A value that cannot be quoted safely leaves its step without a
command and says why. Findings not escalated get no steps.

Every finding also gets a short verification request for the mailbox owner's
business unit (the playbook's "engage with impacted business units").
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources

import pyarrow as pa

from mailhunt.case.logging_gaps import logging_gaps
from mailhunt.case.quoting import QUOTERS, UnsafeIdentity
from mailhunt.events import iso_z
from mailhunt.findings import Finding, event_column

ENVIRONMENT_ORDER = ("exchange_online", "exchange_onprem", "linux", "macos")
PLACEHOLDERS = ("actor", "account", "mailbox", "rule_name", "app_id", "host", "export_file", "task_name",
                "mail_path", "first_seen", "last_seen")
MAX_BINDINGS_PER_STEP = 20

_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_APP_GRANT_ACTION = re.compile(r"consent|permission grant|app role assignment|service principal", re.IGNORECASE)
_EXPORT_FILE = re.compile(r"-FilePath\s+(\"[^\"]+\"|'[^']+'|\S+)", re.IGNORECASE)
_TASK_NAME = re.compile(r"(?:-TaskName|/tn)\s+(\"[^\"]+\"|'[^']+'|\S+)", re.IGNORECASE)
_SPOOL = re.compile(r"^/(?:var/mail|var/spool/mail)/[^/]+$")
_MAC_MAIL = re.compile(r"^(/Users/[^/]+/Library/Mail)(?:/|$)")


@dataclass(frozen=True)
class StepTemplate:
    id: str
    environment: str
    indicators: tuple[str, ...]
    order: int
    shell: str
    command: str
    does: str
    undo: str | None
    undo_note: str | None

    def applies_to(self, indicator: str) -> bool:
        return "*" in self.indicators or indicator in self.indicators

    @cached_property
    def placeholders(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_PLACEHOLDER.findall(self.command + "\n" + (self.undo or ""))))


@dataclass(frozen=True)
class Playbook:
    steps: tuple[StepTemplate, ...]
    environments: Mapping[str, str]
    verification: Mapping[str, str]

    def environment_of(self, dataset: str | None) -> str | None:
        return self.environments.get((dataset or "").split(".", 1)[0])


@cache
def load_playbook() -> Playbook:
    """The shipped step templates (``containment.toml``), checked once."""
    data = tomllib.loads(resources.files("mailhunt.case").joinpath("containment.toml").read_text("utf-8"))
    steps = tuple(StepTemplate(id=s["id"], environment=s["environment"], indicators=tuple(s["indicators"]),
                               order=int(s["order"]), shell=s["shell"], command=s["command"], does=s["does"],
                               undo=s.get("undo"), undo_note=s.get("undo_note")) for s in data["step"])
    for step in steps:
        if step.environment not in ENVIRONMENT_ORDER or step.shell not in QUOTERS:
            raise ValueError(f"containment.toml step {step.id}: unknown environment or shell")
        if not (step.undo or step.undo_note):
            raise ValueError(f"containment.toml step {step.id}: says neither how to undo it nor why not")
    return Playbook(steps, data["environments"], data["verification"])


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) > 1 and value[0] == value[-1] and value[0] in "\"'" else value


def _account(actor: str | None) -> str | None:
    """The account name a directory or host knows: ``DOMAIN\\user`` -> ``user``; a UPN stays whole."""
    return actor.rsplit("\\", 1)[-1] if actor else None


def _mail_path(environment: str, target: str | None, account: str | None) -> str | None:
    if environment == "linux":
        if target and _SPOOL.match(target):
            return target
        return f"/var/mail/{account}" if account and "/" not in account and account not in (".", "..") else None
    if environment == "macos":
        found = _MAC_MAIL.match(target or "")
        if found:
            return found.group(1)
        return f"/Users/{account}/Library/Mail" if account and "/" not in account and account not in (".", "..") \
            else None
    return None


def _event_bindings(finding: Finding, environment_of: Mapping[str, str | None]) -> Iterable[tuple[str, dict]]:
    """(environment, placeholder values) of each distinct event of the finding, in the time order of their first
    events: events alike in environment, action, target, host, parameters and rule name bind the same values,
    so a finding of 200,000 log-cleared records binds them once."""
    columns = {name: event_column(finding.events, name).to_pylist()
               for name in ("event_id", "action", "target", "host", "parameters", "rule_name")}
    account = _account(finding.actor)
    common = {"actor": finding.actor, "account": account, "first_seen": iso_z(finding.first_seen),
              "last_seen": iso_z(finding.last_seen)}
    environments = [environment_of.get(event_id) for event_id in columns["event_id"]]
    distinct = dict.fromkeys(zip(environments, columns["action"], columns["target"], columns["host"],
                                 columns["parameters"], columns["rule_name"], strict=True))
    for environment, action, target, host, parameters, rule_name in distinct:
        if environment is None:
            continue
        action, parameters = action or "", parameters or ""
        export_file = _EXPORT_FILE.search(parameters)
        task_name = _TASK_NAME.search(parameters)
        if not rule_name and finding.indicator == "transport_rule_change" and "TransportRule" in action:
            rule_name = target
        yield environment, {
            **common,
            "mailbox": target if target and "@" in target else None,
            "rule_name": rule_name,
            "app_id": target if target and _GUID.match(target) and _APP_GRANT_ACTION.search(action) else None,
            "host": host,
            "export_file": _unquote(export_file.group(1)) if export_file else None,
            "task_name": _unquote(task_name.group(1)) if task_name else None,
            "mail_path": _mail_path(environment, target, account),
        }


def _fill(template: str, shell: str, values: Mapping[str, str]) -> str:
    quote = QUOTERS[shell]
    return _PLACEHOLDER.sub(lambda m: quote(values[m.group(1)]), template)


def containment_steps(finding: Finding, environment_of: Mapping[str, str | None],
                      playbook: Playbook | None = None) -> list[dict]:
    """The ordered containment steps of an escalated finding ([] for one not escalated)."""
    if not finding.escalate:
        return []
    playbook = playbook or load_playbook()
    bindings: dict[str, list[dict]] = {}
    for environment, values in _event_bindings(finding, environment_of):
        bindings.setdefault(environment, []).append(values)
    templates = sorted((s for s in playbook.steps if s.environment in bindings and s.applies_to(finding.indicator)),
                       key=lambda s: (ENVIRONMENT_ORDER.index(s.environment), s.order, s.id))
    steps: list[dict] = []
    for template in templates:
        keys = (tuple(values[p] for p in template.placeholders) for values in bindings[template.environment])
        seen = list(dict.fromkeys(key for key in keys if all(key)))
        for key in seen[:MAX_BINDINGS_PER_STEP]:
            values = dict(zip(template.placeholders, key, strict=True))
            step = {"step": len(steps) + 1, "id": template.id, "environment": template.environment,
                    "shell": template.shell, "identities": values, "does": template.does,
                    "undo_note": template.undo_note}
            try:
                step["command"] = _fill(template.command, template.shell, values)
                step["undo"] = _fill(template.undo, template.shell, values) if template.undo else None
            except UnsafeIdentity as exc:
                bad = next(p for p in template.placeholders if _unsafe(values[p], template.shell))
                step.update(command=None, undo=None, refused=f"not written: the {bad} value {exc}; "
                                                             "act on it by hand after checking it")
            steps.append(step)
    return steps


def _unsafe(value: str, shell: str) -> bool:
    try:
        QUOTERS[shell](value)
    except UnsafeIdentity:
        return True
    return False


def verification_request(finding: Finding, playbook: Playbook | None = None) -> dict:
    """A short request for the mailbox owner's business unit: who, what, when, what to confirm."""
    playbook = playbook or load_playbook()
    mailboxes = [t for t in finding.targets if "@" in t] or ([finding.actor] if finding.actor else [])
    owner = ", ".join(mailboxes) or "the mailbox owner"
    actor = finding.actor or "an account not named in the logs"
    when = f"{iso_z(finding.first_seen)} to {iso_z(finding.last_seen)} (UTC)"
    what = f"{actor} did {', '.join(finding.actions) or 'the logged actions'} ({len(finding.events)} " \
           f"event{'' if len(finding.events) == 1 else 's'}, indicator {finding.indicator})"
    confirm = playbook.verification.get(finding.indicator, "whether this activity was expected")
    return {
        "to": f"the business unit of {owner}",
        "who": actor,
        "mailboxes": mailboxes,
        "what": what,
        "when": when,
        "confirm": confirm,
        "text": f"To the business unit of {owner}: from {when}, {what}. "
                f"Please confirm {confirm}, and reply to the incident ticket with finding {finding.id}.",
    }


def event_environments(store, findings: list[Finding]) -> dict[str, str | None]:
    """event id -> containment environment, for the events of the escalated findings (their ids given to the
    database as a table, the answer read back as columns: a host's finding may hold 200,000 events)."""
    playbook = load_playbook()
    ids = pa.table({"id": pa.array(list({i for f in findings if f.escalate for i in f.event_ids}), pa.string())})
    if not ids.num_rows:
        return {}
    store.db.register("escalated_event_ids", ids)
    try:
        found = store.db.sql('SELECT "event.id" AS id, any_value("event.dataset") AS dataset FROM events '
                             'WHERE "event.id" IN (SELECT id FROM escalated_event_ids) GROUP BY "event.id"'
                             ).to_arrow_table()
    finally:
        store.db.unregister("escalated_event_ids")
    datasets = found.column("dataset").to_pylist()
    environments = {dataset: playbook.environment_of(dataset) for dataset in set(datasets)}
    return dict(zip(found.column("id").to_pylist(), (environments[d] for d in datasets), strict=True))


def add_case_plans(document: dict, findings: list[Finding], store) -> None:
    """Add ``containment`` and ``verification_request`` to every finding of a findings document, and the
    case's ``logging_gaps``."""
    environment_of = event_environments(store, findings)
    document["logging_gaps"] = logging_gaps(store, document)
    by_id = {f.id: f for f in findings}
    for entry in document.get("findings") or []:
        finding = by_id.get(entry.get("id"))
        if finding is None:
            continue
        entry["containment"] = containment_steps(finding, environment_of)
        entry["verification_request"] = verification_request(finding)
