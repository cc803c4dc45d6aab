"""Repairs: the ledger side of the reconcile sweeper and of the dead-letter tools.

The sweeper (dunning/workers/reconcile.py) settles what a crash left behind: ``sending`` too
long, queued but never published, past ``expires_at``, ``sent`` with no final receipt. The
dead-letter tools (dunning/workers/dlq.py, dlq_reissue.py) make a dead intent sendable again,
or find that it was sent after all. Each method is one transaction, safe to repeat and to run
in several processes at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, exists, select, update

from dunning.clock import utc
from dunning.intents import ContactIntent, encode_intent
from dunning.ledger.core import LedgerCore
from dunning.ledger.queries import insert_missing_intents, intent_values, read_intent
from dunning.ledger.receipts import resolve_from_receipts
from dunning.ledger.schema import attempts, audit, intents
from dunning.ledger.states import ALREADY_SENT, WAITING
from dunning.ledger.transitions import write_audit
from dunning.records import IntentState

__all__ = ["UNKNOWN_AFTER", "LedgerRepairs", "ReissueVerdict", "ReplayVerdict", "StuckSending"]

#: Default time an intent may stay ``sent`` without a final receipt before it becomes ``unknown``.
UNKNOWN_AFTER = timedelta(hours=72)
#: Replaying a dead letter: ``replay`` it (the ledger is ready), ``obsolete`` (it was sent:
#: remove the dead copy), ``final`` (expired, suppressed, ...: leave it).
ReplayVerdict = Literal["replay", "obsolete", "final"]
#: Re-issuing a dead intent: ``reissued`` (row rewritten), ``resumed`` (rewritten by an earlier
#: run), ``obsolete`` (it was sent), ``skipped`` (left alone, with why).
ReissueVerdict = Literal["reissued", "resumed", "obsolete", "skipped"]
_REPUBLISHED = "reconcile_republished"


@dataclass(frozen=True, slots=True)
class StuckSending:
    """What reconciling one intent left in ``sending`` did: ``settled`` it from its receipts,
    or audited a re-publish of ``republish``; neither when a worker moved it meanwhile or it
    was re-published within the window already."""

    settled: IntentState | None = None
    republish: ContactIntent | None = None


class LedgerRepairs(LedgerCore):
    """Reconcile and dead-letter repairs (see the module docstring)."""

    def stuck_sending(self, *, older_than: datetime) -> list[str]:
        """Ids of intents in ``sending`` since before ``older_than`` (candidates to reconcile)."""
        with self._tx(read=True) as conn:
            return list(
                conn.scalars(
                    select(intents.c.intent_id)
                    .where(
                        intents.c.state == IntentState.SENDING.value,
                        intents.c.sending_since < utc(older_than),
                    )
                    .order_by(intents.c.sending_since)
                )
            )

    def reconcile_stuck(self, intent_id: str, *, now: datetime, cutoff: datetime) -> StuckSending:
        """Settle ``intent_id``, in ``sending`` since before ``cutoff``, from its receipts, or
        audit a re-publish of its body (not repeated within the window since ``cutoff``)."""
        with self._tx(what=f"reconciling {intent_id}") as conn:
            row = conn.execute(
                select(intents.c.state, intents.c.attempts, intents.c.sending_since, intents.c.body)
                .where(intents.c.intent_id == intent_id)
                .with_for_update()
            ).first()
            stale = row is not None and row.sending_since is not None
            if not stale or row is None or row.state != IntentState.SENDING.value:
                return StuckSending()  # a worker moved it meanwhile
            if row.sending_since >= cutoff:
                return StuckSending()
            settled = resolve_from_receipts(conn, intent_id, int(row.attempts), now=now)
            if settled is not None:
                write_audit(conn, intent_id, "reconciled", now, detail={"state": settled})
                return StuckSending(settled=settled)
            if _republished_since(conn, intent_id, cutoff):
                return StuckSending()
            write_audit(
                conn,
                intent_id,
                _REPUBLISHED,
                now,
                detail={"attempt": int(row.attempts), "sending_since": row.sending_since},
            )
            body = str(row.body)
        return StuckSending(republish=read_intent(body))

    def unpublished(self, *, older_than: datetime, limit: int = 1000) -> list[ContactIntent]:
        """Queued intents recorded before ``older_than`` that the broker never confirmed."""
        cutoff = utc(older_than)
        with self._tx(read=True) as conn:
            bodies = conn.scalars(
                select(intents.c.body)
                .where(
                    intents.c.state == IntentState.QUEUED.value,
                    intents.c.published_at.is_(None),
                    intents.c.updated_at < cutoff,
                    intents.c.expires_at > cutoff,  # a stale collection message is never sent
                )
                .order_by(intents.c.updated_at)
                .limit(limit)
            ).all()
        return [read_intent(body) for body in bodies]

    def expire_overdue(self, *, now: datetime) -> list[str]:
        """Move waiting (queued or deferred) intents past ``expires_at`` to ``expired``; their
        ids. A stale collection message is never sent late."""
        with self._tx(what="expiring intents") as conn:
            ids = list(
                conn.scalars(
                    update(intents)
                    .where(
                        intents.c.state.in_([s.value for s in WAITING]),
                        intents.c.expires_at <= now,
                    )
                    .values(
                        state=IntentState.EXPIRED.value,
                        sending_since=None,
                        updated_at=now,
                        last_error="expires_at passed before sending",
                    )
                    .returning(intents.c.intent_id)
                )
            )
            for intent_id in ids:
                write_audit(conn, intent_id, "expired", now, detail={"by": "reconcile"})
        return ids

    def sweep_unknown(
        self, *, now: datetime, older_than: timedelta = UNKNOWN_AFTER, limit: int = 1000
    ) -> list[str]:
        """Move intents left ``sent`` (no final receipt) since before ``now - older_than`` to
        unknown; returns the ids moved.

        The age is measured from the intent's last change (the send, or its last non-final
        receipt). A final receipt that arrives later still applies: ``unknown`` is not final
        for receipts, only for sending.
        """
        now = utc(now)
        cutoff = now - older_than
        with self._tx() as conn:
            ids = list(
                conn.scalars(
                    select(intents.c.intent_id)
                    .where(intents.c.state == IntentState.SENT.value, intents.c.updated_at < cutoff)
                    .order_by(intents.c.updated_at)
                    .limit(limit)
                )
            )
            for intent_id in ids:
                conn.execute(
                    update(intents)
                    .where(
                        intents.c.intent_id == intent_id,
                        intents.c.state == IntentState.SENT.value,
                    )
                    .values(state=IntentState.UNKNOWN.value, updated_at=now)
                )
                write_audit(
                    conn, intent_id, "unknown", now, detail={"no_final_receipt_since": cutoff}
                )
        return ids

    # --- dead letters -----------------------------------------------------------------------

    def prepare_replay(self, intent_id: str, *, now: datetime) -> ReplayVerdict:
        """Make ``intent_id`` sendable again if it died without reaching a provider: a ``dead``
        intent goes back to ``queued`` with an audit record ``replayed``."""
        with self._tx(what=f"preparing {intent_id} for replay") as conn:
            state = conn.scalar(
                select(intents.c.state).where(intents.c.intent_id == intent_id).with_for_update()
            )
            # A sending one too: the claim's reconcile window decides.
            if state is None or state in (*WAITING, IntentState.SENDING):
                return "replay"
            if state in ALREADY_SENT or _was_sent(conn, intent_id):
                return "obsolete"
            if state != IntentState.DEAD.value:
                return "final"
            conn.execute(
                update(intents)
                .where(intents.c.intent_id == intent_id)
                .values(state=IntentState.QUEUED.value, sending_since=None, updated_at=now)
            )
            write_audit(conn, intent_id, "replayed", now, detail={"from": state})
            return "replay"

    def reissue(
        self, old: ContactIntent, new: ContactIntent, *, now: datetime, operator: str
    ) -> tuple[ReissueVerdict, str]:
        """Rewrite dead intent ``old`` as ``new`` (same id): the new body, ``queued``, not yet
        published, and an audit record ``reissued``; or say why not."""
        with self._tx(what=f"re-issuing {old.intent_id}") as conn:
            return _rewrite(conn, old, new, now, operator)


def _rewrite(
    conn: Connection, old: ContactIntent, new: ContactIntent, now: datetime, operator: str
) -> tuple[ReissueVerdict, str]:
    intent_id = old.intent_id
    row = conn.execute(
        select(intents.c.state, intents.c.body)
        .where(intents.c.intent_id == intent_id)
        .with_for_update()
    ).one_or_none()
    was_sent = _was_sent(conn, intent_id)
    if was_sent or (row is not None and IntentState(row.state) in ALREADY_SENT):
        return "obsolete", "the ledger shows it sent"
    body = encode_intent(new).decode()
    if row is not None and IntentState(row.state) is IntentState.QUEUED and row.body == body:
        return "resumed", ""  # rewritten by an earlier run that stopped before the publish or ack
    if row is not None and IntentState(row.state) is not IntentState.DEAD:
        return "skipped", f"the ledger has it {row.state}"
    if row is None:
        insert_missing_intents(conn, [intent_values(new, now=now, published=False)])
    else:
        conn.execute(
            update(intents)
            .where(intents.c.intent_id == intent_id)
            .values(
                body=body,
                state=IntentState.QUEUED.value,
                published_at=None,  # the sweeper republishes it if this run stops here
                sending_since=None,
                last_error=None,
                updated_at=now,
            )
        )
    write_audit(
        conn,
        intent_id,
        "reissued",
        now,
        detail={
            "by": operator,
            "from_template": old.template.name,
            "to_template": new.template.name,
            "locale": new.template.locale,
            "from_state": None if row is None else row.state,
        },
    )
    return "reissued", ""


def _was_sent(conn: Connection, intent_id: str) -> bool:
    """Whether any attempt of ``intent_id`` was accepted by a provider."""
    return bool(
        conn.scalar(
            select(
                exists().where(
                    attempts.c.intent_id == intent_id,
                    attempts.c.outcome == IntentState.SENT.value,
                )
            )
        )
    )


def _republished_since(conn: Connection, intent_id: str, cutoff: datetime) -> bool:
    found = conn.scalar(
        select(audit.c.id)
        .where(audit.c.intent_id == intent_id, audit.c.event == _REPUBLISHED)
        .where(audit.c.at >= cutoff)
        .limit(1)
    )
    return found is not None
