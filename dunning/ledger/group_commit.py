"""Recording accepted sends: many at once, in the caller's one transaction (group commit).

This is the one way a send is recorded. The worker's
:class:`dunning.workers.ledger_writer.SentWriter` gathers the sends that finish together and
writes them with :meth:`dunning.ledger.Ledger.record_sent_many`; ``Ledger.record_sent`` is a
batch of one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update

from dunning.clock import utc
from dunning.ledger.receipts import apply_receipt
from dunning.ledger.schema import attempts, intents, receipts
from dunning.ledger.statements_pg import RECORD_SENT_BATCH
from dunning.ledger.states import AFTER_SENT
from dunning.ledger.transitions import attempt_is
from dunning.records import IntentState

__all__ = ["SentRecord", "record_sent_batch", "sent_batch_params", "sent_detail"]


@dataclass(frozen=True, slots=True)
class SentRecord:
    """One accepted send: the provider took attempt ``attempt`` of ``intent_id``."""

    intent_id: str
    attempt: int
    provider_ref: str
    status: str
    detail: Mapping[str, str | int]
    now: datetime


def record_sent_batch(conn: Connection, records: Sequence[SentRecord]) -> None:
    """Record every send, in the caller's one transaction; early receipts for their refs are
    applied.

    PostgreSQL: one statement for the whole batch (the per-record statements cost a round trip,
    and their transaction a WAL flush, each); other databases: one record at a time.
    """
    if conn.dialect.name != "postgresql":
        for record in records:
            _record_sent(conn, record)
        return
    params = sent_batch_params(records)
    early = [row[0] for row in conn.exec_driver_sql(RECORD_SENT_BATCH, params)]
    for receipt_id in early:
        apply_receipt(conn, receipt_id, now=max(r.now for r in records))


def sent_batch_params(records: Sequence[SentRecord]) -> dict[str, list[Any]]:
    """The arrays :data:`RECORD_SENT_BATCH` takes."""
    return {
        "iids": [r.intent_id for r in records],
        "attempts": [r.attempt for r in records],
        "refs": [r.provider_ref for r in records],
        "details": [sent_detail(r) for r in records],
        "nows": [utc(r.now) for r in records],
    }


def _record_sent(conn: Connection, r: SentRecord) -> None:
    """One record, statement by statement: the same writes as :data:`RECORD_SENT_BATCH`."""
    conn.execute(
        update(attempts)
        .where(attempt_is(r.intent_id, r.attempt), attempts.c.outcome != "released")
        .values(
            outcome=IntentState.SENT.value,
            finished_at=r.now,
            provider_ref=r.provider_ref,
            detail=sent_detail(r),
        )
    )
    conn.execute(
        update(intents)
        .where(
            intents.c.intent_id == r.intent_id,
            # An early receipt may already have moved it further: never step back.
            intents.c.state.not_in([s.value for s in AFTER_SENT]),
        )
        .values(
            state=IntentState.SENT.value,
            provider_ref=r.provider_ref,
            sending_since=None,
            last_error=None,
            updated_at=r.now,
        )
    )
    early = conn.scalars(
        select(receipts.c.id)
        .where(receipts.c.provider_ref == r.provider_ref, receipts.c.intent_id.is_(None))
        .order_by(receipts.c.rank)
    ).all()
    for receipt_id in early:
        apply_receipt(conn, receipt_id, now=r.now)


def sent_detail(r: SentRecord) -> str:
    """The ``detail`` column of a recorded send."""
    return json.dumps({"status": r.status, **r.detail}, sort_keys=True)
