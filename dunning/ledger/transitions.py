"""State transitions of one intent, each run inside a transaction the Ledger opened.

    queued ─claim─► sending ─record_sent─► sent ─receipt─► delivered | failed | undelivered
      ▲  │            │  └──record_failure──► queued (retry) | dead | expired
      │  │            │     (the attempt is `failed`, or `not_sent` when it never reached
      │  │            │      the provider: only the latter is left out of the caps)
      │  └─gate──► deferred | suppressed | dead
      └──release── sending (rate limited: the attempt never reached the provider)

A ``sending`` intent older than the reconcile window is settled from its receipts, or else
reclaimed (audited) and sent again: at that point the provider has had the window to report.
``record_sent`` is in :mod:`dunning.ledger.group_commit` (sends are recorded in batches).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, and_, insert, select, update

from dunning.intents import Channel, ContactIntent
from dunning.ledger.queries import (
    NOT_SENT,
    RECLAIMED,
    Claim,
    insert_missing_intents,
    intent_values,
    read_history,
)
from dunning.ledger.receipts import resolve_from_receipts
from dunning.ledger.schema import attempts, audit, intents
from dunning.ledger.statements_pg import PG_STATEMENTS as _PG
from dunning.records import TERMINAL_STATES, ContactHistory, DialOutcome, GateDecision, IntentState

__all__ = [
    "GATED_STATE",
    "HISTORY_WINDOW",
    "IN_DOUBT",
    "attempt_is",
    "claim_intent",
    "close_reclaimed",
    "decision_audit",
    "record_failure",
    "release_attempt",
    "restore_reclaimed",
    "write_audit",
]

log = structlog.get_logger(__name__)

#: How far back the gate looks: the longest cap window (7 days) plus a day of time-zone slack.
HISTORY_WINDOW = timedelta(days=8)
#: The bureau step looks back further: its prior notice may be months old (docs/bureau.md).
BUREAU_HISTORY_WINDOW = timedelta(days=400)
#: A reclaimed attempt whose replacement never reached the provider: counted, settled by nobody.
IN_DOUBT = "in_doubt"
GATED_STATE = {
    "defer": IntentState.DEFERRED,
    "suppress": IntentState.SUPPRESSED,
    "refuse": IntentState.DEAD,
}


def claim_intent(
    conn: Connection,
    intent: ContactIntent,
    *,
    worker: str,
    now: datetime,
    reconcile_after_s: float,
    gate: Callable[[ContactHistory], GateDecision] | None,
) -> Claim:
    """The claim of :meth:`Ledger.claim`; the caller holds the person's lock."""
    intent_id = intent.intent_id
    row = _lock_intent(conn, intent, now)
    state, attempt = IntentState(row.state), int(row.attempts)
    reclaimed_since: datetime | None = None
    if state in TERMINAL_STATES:
        return Claim("done", state, attempt)
    if state is IntentState.SENDING:
        since = row.sending_since
        if since is not None and since + timedelta(seconds=reconcile_after_s) > now:
            return Claim("in_doubt", state, attempt, sending_since=since)
        settled = resolve_from_receipts(conn, intent_id, attempt, now=now)
        if settled is not None:
            write_audit(conn, intent_id, "reconciled", now, detail={"state": settled.value})
            return Claim("done", settled, attempt)
        write_audit(
            conn, intent_id, "reclaimed", now, detail={"attempt": attempt, "sending_since": since}
        )
        close_reclaimed(conn, intent_id, attempt, now)
        log.warning("ledger.reclaimed", intent_id=intent_id, attempt=attempt)
        reclaimed_since = since
    decision = None
    if gate is not None:
        third_party = intent.collector_role != "first_party"  # only they owe a validation notice
        window = BUREAU_HISTORY_WINDOW if intent.channel is Channel.BUREAU else HISTORY_WINDOW
        history = read_history(conn, intent.person_id, since=now - window, notices=third_party)
        decision = gate(history)
        if decision.action != "allow":
            return _gated(conn, intent_id, attempt, decision, now)
    attempt += 1
    phoned = intent.channel in (Channel.SMS, Channel.VOICE)
    # A call counts against the caps from the dial; the receipt says how it ended.
    dial = DialOutcome.PENDING.value if intent.channel is Channel.VOICE else None
    allow = decision_audit(intent_id, "allow", decision, now, attempt=attempt)
    if conn.dialect.name == "postgresql":
        # The hot path: three writes in one round trip (data-modifying CTEs always run), one
        # statement built once.
        conn.execute(
            _PG.claim_write,
            {
                "p_iid": intent_id,
                "p_now": now,
                "p_attempt": attempt,
                "p_worker": worker,
                "p_channel": intent.channel.value,
                "p_person": intent.person_id,
                "p_debt": intent.debt_id,
                "p_template": intent.template.name,
                "p_phone": intent.recipient.phone if phoned else None,
                "p_dial": dial,
                "p_rule": allow["rule_id"],
                "p_pack": allow["pack_version"],
                "p_detail": allow["detail"],
            },
        )
        return Claim(
            "claimed", IntentState.SENDING, attempt, decision, now, reclaimed_since=reclaimed_since
        )
    conn.execute(
        update(intents)
        .where(intents.c.intent_id == intent_id)
        .values(
            state=IntentState.SENDING.value, sending_since=now, attempts=attempt, updated_at=now
        )
    )
    conn.execute(
        insert(attempts).values(
            intent_id=intent_id,
            attempt_no=attempt,
            worker=worker,
            started_at=now,
            outcome=IntentState.SENDING.value,
            channel=intent.channel.value,
            person_id=intent.person_id,
            debt_id=intent.debt_id,
            template=intent.template.name,
            phone=intent.recipient.phone if phoned else None,
            dial_outcome=dial,
        )
    )
    conn.execute(insert(audit).values(**allow))
    return Claim(
        "claimed", IntentState.SENDING, attempt, decision, now, reclaimed_since=reclaimed_since
    )


def _lock_intent(conn: Connection, intent: ContactIntent, now: datetime) -> Any:
    """Insert the intent if it is new, lock its row, return state, attempts, sending_since."""
    # A message may arrive that the evaluator never recorded: it came from the broker.
    values = intent_values(intent, now=now, published=True)
    columns = (intents.c.state, intents.c.attempts, intents.c.sending_since)
    if conn.dialect.name == "postgresql":
        # One round trip instead of insert + SELECT FOR UPDATE: the conflict arm takes the
        # same row lock and RETURNING reads the row as it stands.
        return conn.execute(_PG.upsert, values).one()
    insert_missing_intents(conn, [values])
    return conn.execute(
        select(*columns).where(intents.c.intent_id == intent.intent_id).with_for_update()
    ).one()


def _gated(
    conn: Connection, intent_id: str, attempt: int, decision: GateDecision, now: datetime
) -> Claim:
    state = GATED_STATE[decision.action]
    _settle(conn, intent_id, state, f"{decision.rule_id}: {decision.reason}", now)
    _audit_decision(conn, intent_id, decision.action, decision, now, attempt=attempt)
    return Claim("gated", state, attempt, decision)


def release_attempt(
    conn: Connection, intent_id: str, attempt: int, *, reason: str, now: datetime
) -> None:
    """Back to queued with the attempt uncounted; a no-op unless ``attempt`` is still sending."""
    released = conn.execute(
        update(attempts)
        .where(attempt_is(intent_id, attempt), attempts.c.outcome == IntentState.SENDING.value)
        .values(outcome="released", finished_at=now, reason=reason)
    ).rowcount
    if not released:
        return
    restore_reclaimed(conn, intent_id, attempt, now)
    conn.execute(
        update(intents)
        .where(
            intents.c.intent_id == intent_id,
            intents.c.state == IntentState.SENDING.value,
            intents.c.attempts == attempt,
        )
        .values(
            state=IntentState.QUEUED.value, attempts=attempt - 1, sending_since=None, updated_at=now
        )
    )
    write_audit(conn, intent_id, "released", now, detail={"attempt": attempt, "reason": reason})


def record_failure(
    conn: Connection,
    intent_id: str,
    attempt: int,
    *,
    error_class: str,
    reason: str,
    provider_code: str | None,
    next_state: IntentState,
    now: datetime,
    reached_provider: bool = True,
) -> None:
    """Close ``attempt`` as failed; one that never reached the provider is ``not_sent``, which
    the contact history (and so the caps) leaves out."""
    conn.execute(
        update(attempts)
        .where(attempt_is(intent_id, attempt), attempts.c.outcome != "released")
        .values(
            outcome="failed" if reached_provider else NOT_SENT,
            finished_at=now,
            error_class=error_class,
            reason=reason,
            provider_code=provider_code,
        )
    )
    if not reached_provider:
        restore_reclaimed(conn, intent_id, attempt, now)
    _settle(conn, intent_id, next_state, f"{error_class}: {reason}", now)


def _settle(
    conn: Connection, intent_id: str, state: IntentState, last_error: str, now: datetime
) -> None:
    """The intent leaves sending for ``state``, saying why in ``last_error``."""
    conn.execute(
        update(intents)
        .where(intents.c.intent_id == intent_id)
        .values(state=state.value, sending_since=None, updated_at=now, last_error=last_error)
    )


def close_reclaimed(conn: Connection, intent_id: str, attempt: int, now: datetime) -> None:
    """Close attempt ``attempt``, left in ``sending``, as replaced by the one being claimed: the
    caps count the new attempt instead (an intent is one contact, not one per attempt)."""
    # A worker still recording that attempt holds its row (attempts before intents): skip it
    # rather than wait in the opposite order; its record closes the attempt as sent.
    still_sending = (
        select(attempts.c.id)
        .where(attempt_is(intent_id, attempt), attempts.c.outcome == IntentState.SENDING.value)
        .with_for_update(skip_locked=True)
    )
    conn.execute(
        update(attempts)
        .where(attempts.c.id.in_(still_sending))
        .values(outcome=RECLAIMED, finished_at=now)
    )


def restore_reclaimed(conn: Connection, intent_id: str, attempt: int, now: datetime) -> None:
    """Attempt ``attempt`` never reached the provider: if it replaced a reclaimed attempt, that
    one counts again (closed as ``in_doubt``: it may have reached the person)."""
    conn.execute(
        update(attempts)
        .where(attempt_is(intent_id, attempt - 1), attempts.c.outcome == RECLAIMED)
        .values(outcome=IN_DOUBT, finished_at=now)
    )


def write_audit(
    conn: Connection,
    intent_id: str | None,
    event: str,
    now: datetime,
    *,
    rule_id: str | None = None,
    pack_version: str | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one audit record; ``detail`` is stored as JSON (datetimes as ISO text)."""
    conn.execute(
        insert(audit).values(**_audit_row(intent_id, event, now, rule_id, pack_version, detail))
    )


def _audit_row(
    intent_id: str | None,
    event: str,
    now: datetime,
    rule_id: str | None,
    pack_version: str | None,
    detail: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {
        "at": now,
        "intent_id": intent_id,
        "event": event,
        "rule_id": rule_id,
        "pack_version": pack_version,
        "detail": None
        if detail is None
        else json.dumps(dict(detail), sort_keys=True, default=_text),
    }


def _audit_decision(
    conn: Connection,
    intent_id: str,
    event: str,
    decision: GateDecision | None,
    now: datetime,
    *,
    attempt: int,
) -> None:
    row = decision_audit(intent_id, event, decision, now, attempt=attempt)
    conn.execute(insert(audit).values(**row))


def decision_audit(
    intent_id: str,
    event: str,
    decision: GateDecision | None,
    now: datetime,
    *,
    attempt: int,
) -> dict[str, Any]:
    """The audit row of a gate verdict (``gate: none`` when no gate ran)."""
    if decision is None:
        return _audit_row(intent_id, event, now, None, None, {"attempt": attempt, "gate": "none"})
    return _audit_row(
        intent_id,
        event,
        now,
        decision.rule_id,
        decision.pack_version or None,
        {
            "attempt": attempt,
            "reason": decision.reason,
            "until": decision.until,
            "inputs": decision.inputs,
        },
    )


def attempt_is(intent_id: str, attempt: int) -> Any:
    """The row of attempt number ``attempt`` of ``intent_id``."""
    return and_(attempts.c.intent_id == intent_id, attempts.c.attempt_no == attempt)


def _text(value: object) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
