"""Question 4: for rule changes, did suspicious mail arrive around the change?

For a transport- or inbox-rule finding, the rule's mail conditions are read
from the parameters of the finding's events (``mail_conditions``), and the
message trace and message tracking records within ``WINDOW`` before the first
and after the last change are searched for mail that meets them (for an inbox
rule, mail to that mailbox). Matching mail is suspicious when

- its sender's domain imitates one of the organization's (``lookalike``),
- the service marked it spam or quarantined it (a status with one of
  ``SPAM_WORDS``: FilteredAsSpam, Quarantined, Quarantine ...), or
- it came from outside the organization as a burst: ``BURST_MESSAGES`` or more
  distinct messages within ``BURST_SPAN``, or
- message tracking shows a transport rule acting on it silently, in enforce
  mode: copying or redirecting it (``BlindCopyTo``, ``RedirectMessage`` ...)
  to an address outside the organization, or deleting it (``DeleteMessage``)
  (``labels.transport_rule_action``, written by the message tracking readers
  from ``custom-data``).

yes: suspicious matching mail arrived (the answer names times, counts and
message ids). no: the message logs cover the whole window and no suspicious
matching mail is in it. unknown: no message logs, logs covering only part of
the window, or no organization domains configured when that is what a "no"
would rest on.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailhunt.events import iso_z
from mailhunt.findings import Answer, Finding
from mailhunt.triage.context import TriageContext
from mailhunt.triage.lookalike import Lookalike, is_own, lookalike
from mailhunt.triage.mail_conditions import MailConditions
from mailhunt.triage.policy import policy

NAME = "transport_rule_with_suspicious_mail"
RULE_INDICATORS = policy().family("rule_change")
MESSAGE_DATASETS = ("exchange.message_tracking", "m365.message_trace")
WINDOW = timedelta(hours=6)
BURST_MESSAGES = 3
BURST_SPAN = timedelta(hours=1)
SPAM_WORDS = ("spam", "quarantin", "junk")
MAX_IDS = 5
# Transport rule actions that copy, divert or remove mail without telling sender or recipient.
SILENT_RULE_ACTIONS = ("blindcopyto", "copyto", "addtorecipient", "addmanagerasrecipient", "redirectmessage",
                       "moderatemessageby", "deletemessage", "quarantine")


@dataclass(frozen=True)
class Message:
    """One message (several trace/tracking records of one message id fold into it)."""

    key: str
    first_seen: datetime
    sender: str | None
    recipients: str
    subject: str | None
    statuses: frozenset[str]
    lookalike: Lookalike | None
    external: bool
    rule_actions: frozenset[str] = frozenset()

    @property
    def spam(self) -> bool:
        return any(_is_spam(s) for s in self.statuses)


def _silent_actions(row: dict, domains: tuple[str, ...]) -> set[str]:
    """The silent transport rule actions a tracking record names, as ``action [to address] by rule <id>``.

    Deletions always count; a copy or redirection only to an address outside the organization's
    ``domains`` (the recipients the rule added when the reader could tell them, else all the record
    lists), so a journal copy to an internal mailbox is not suspicious."""
    mode = (row.get("rule_mode") or "").lower()
    if "audit" in mode or "test" in mode:
        return set()
    actions = [a.strip() for a in (row.get("rule_actions") or "").split(",") if a.strip()]
    outside = [r for r in (row.get("recipients") or "").split(";")
               if "@" in r and domains and not is_own(r.rsplit("@", 1)[1], domains)]
    found = set()
    for action in actions:
        word = action.lower()
        if word in ("deletemessage", "quarantine"):
            found.add(f"{action} by rule {row.get('rule') or '?'}")
        elif any(w in word for w in SILENT_RULE_ACTIONS) and outside:
            found.add(f"{action} to {', '.join(outside[:3])} by rule {row.get('rule') or '?'}")
    return found


def _is_spam(status: str) -> bool:
    return any(word in status.lower() for word in SPAM_WORDS)


def _rule_events(finding: Finding, ctx: TriageContext) -> list[dict]:
    return ctx.rule_changes(finding, RULE_INDICATORS)


def _coverage(ctx: TriageContext) -> list[tuple[datetime, datetime]]:
    """Spans the message logs cover: per file, its first to last record, widened to a trace query's dates."""
    spans = []
    for first, last, query_start, query_end in ctx.message_log_spans(MESSAGE_DATASETS):
        if query_start:
            first = min(first, datetime.fromisoformat(query_start.rstrip("Z")))
        if query_end:
            last = max(last, datetime.fromisoformat(query_end.rstrip("Z")))
        spans.append((first, last))
    return spans


def _covered(spans: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> bool:
    reached = start
    for first, last in sorted(spans):
        if first > reached:
            return False
        reached = max(reached, last)
        if reached >= end:
            return True
    return reached >= end


def _messages(ctx: TriageContext, start: datetime, end: datetime, conditions: MailConditions,
              mailboxes: list[str]) -> list[Message]:
    rows = ctx.store.resolved.messages_between(MESSAGE_DATASETS, start, end)
    domains = ctx.config.domains
    grouped: dict[str, list[dict]] = {}
    for row in rows:
        if not conditions.matches(row["subject"], row["sender"]):
            continue
        if mailboxes and not any(m in (row["all_recipients"] or "").lower() for m in mailboxes):
            continue
        grouped.setdefault(row["message_id"] or row["id"], []).append(row)
    messages = []
    for key, records in grouped.items():
        sender = next((r["sender"] for r in records if r["sender"]), None)
        domain = sender.rsplit("@", 1)[1] if sender and "@" in sender else ""
        messages.append(Message(
            key, records[0]["ts"], sender,
            ";".join(sorted({r["all_recipients"] for r in records if r["all_recipients"]})),
            next((r["subject"] for r in records if r["subject"]), None),
            frozenset(r["status"] for r in records if r["status"]),
            lookalike(domain, domains) if domain and domains else None,
            bool(domain) and bool(domains) and not is_own(domain, domains),
            frozenset(action for r in records for action in _silent_actions(r, domains))))
    return sorted(messages, key=lambda m: (m.first_seen, m.key))


def _burst(messages: list[Message]) -> list[Message]:
    """The largest set of external messages within BURST_SPAN, if it reaches BURST_MESSAGES."""
    external = [m for m in messages if m.external]
    best: list[Message] = []
    for index, first in enumerate(external):
        run = [m for m in external[index:] if m.first_seen - first.first_seen <= BURST_SPAN]
        if len(run) > len(best):
            best = run
    return best if len(best) >= BURST_MESSAGES else []


def _mailboxes(finding: Finding, events: list[dict]) -> list[str]:
    """For an inbox rule, the mailbox (address, or alias as the local part) whose mail it acts on."""
    if finding.indicator != "inbox_rule_hiding":
        return []
    names = {(e["target"] or "").lower() for e in events if e["target"]}
    return sorted(n if "@" in n else f"{n}@" for n in names if n)


def _ids(messages: list[Message]) -> str:
    shown = ", ".join(m.key for m in messages[:MAX_IDS])
    return shown + (f" and {len(messages) - MAX_IDS} more" if len(messages) > MAX_IDS else "")


def _span(messages: list[Message]) -> str:
    return f"{iso_z(messages[0].first_seen)}..{iso_z(messages[-1].first_seen)}"


def answer(finding: Finding, ctx: TriageContext) -> Answer:
    if finding.indicator not in RULE_INDICATORS:
        return Answer("unknown", "does not apply: not a transport- or inbox-rule finding")
    events = _rule_events(finding, ctx)
    if not events:
        return Answer("unknown", "the finding's events are not in the case")
    conditions = MailConditions()
    for event in events:
        conditions.add(dict(event["params"] or {}))
    first_change, last_change = events[0]["ts"], events[-1]["ts"]
    start, end = first_change - WINDOW, last_change + WINDOW
    window = f"{iso_z(start)}..{iso_z(end)} (6 h around the change at {iso_z(first_change)})"
    spans = _coverage(ctx)
    if not spans:
        return Answer("unknown", "the case holds no message trace or message tracking records; add an Exchange "
                                 f"Online message trace or MSGTRK logs covering {window} to answer")
    messages = _messages(ctx, start, end, conditions, _mailboxes(finding, events))
    condition_text = (f"message(s) meeting the rule's {conditions.describe()}" if not conditions.empty
                      else "message(s) in the window (the rule names no subject or sender condition a trace shows)")
    lookalikes = [m for m in messages if m.lookalike]
    spam = [m for m in messages if m.spam]
    burst = _burst(messages)
    ruled = [m for m in messages if m.rule_actions]
    suspicious = sorted(set(lookalikes) | set(spam) | set(burst) | set(ruled), key=lambda m: (m.first_seen, m.key))
    if suspicious:
        reasons = []
        if lookalikes:
            domains = sorted({f"{near.describe()} ({near.kind})" for m in lookalikes if (near := m.lookalike)})
            reasons.append(f"{len(lookalikes)} from lookalike domains: {'; '.join(domains)}")
        if spam:
            counts = Counter(s for m in spam for s in m.statuses if _is_spam(s))
            reasons.append(f"{len(spam)} marked spam or quarantined ("
                           + ", ".join(f"{status} x{n}" for status, n in sorted(counts.items())) + ")")
        if burst:
            reasons.append(f"a burst of {len(burst)} external messages within "
                           f"{BURST_SPAN.total_seconds() / 3600:.0f} h ({_span(burst)})")
        if ruled:
            acted = sorted({a for m in ruled for a in m.rule_actions})
            reasons.append(f"{len(ruled)} silently copied, redirected or deleted by a transport rule ("
                           + "; ".join(acted[:MAX_IDS]) + (f" and {len(acted) - MAX_IDS} more" if len(acted) > MAX_IDS
                                                           else "") + ")")
        minutes = (suspicious[0].first_seen - first_change).total_seconds() / 60
        when = f"{abs(minutes):.0f} min {'after' if minutes >= 0 else 'before'} the change at {iso_z(first_change)}"
        return Answer("yes", f"{len(suspicious)} suspicious message(s) among {len(messages)} {condition_text} "
                             f"arrived {_span(suspicious)}, the first {when}: " + "; ".join(reasons)
                             + f"; message ids {_ids(suspicious)}")
    if not _covered(spans, start, end):
        covered = "; ".join(f"{iso_z(a)}..{iso_z(b)}" for a, b in spans)
        return Answer("unknown", f"{len(messages)} {condition_text} in the message logs, none suspicious, but the "
                                 f"logs cover only {covered} of the window {window}")
    if messages and not ctx.config.domains:
        return Answer("unknown", f"{len(messages)} {condition_text} in {window}, none spam or quarantined; external "
                                 "and lookalike senders cannot be told without organization.domains in the configuration")
    found = (f"{len(messages)} {condition_text} arrived ({_span(messages)}; {_ids(messages)}), none from a lookalike "
             "domain, marked spam or quarantined, in an external burst, or silently acted on by a transport rule") if messages else f"no {condition_text.replace('message(s)', 'message')} arrived"
    return Answer("no", f"{found}; the message logs cover the whole window {window}")
