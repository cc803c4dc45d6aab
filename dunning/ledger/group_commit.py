"""Group commit of ``record_sent``: many accepted sends written in the caller's one transaction.

The worker's :class:`dunning.workers.ledger_writer.SentWriter` gathers the sends that finish
together and writes them with :meth:`dunning.ledger.Ledger.record_sent_many`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from dunning.ledger.receipts import apply_receipt
from dunning.ledger.statements_pg import RECORD_SENT_BATCH
from dunning.ledger.transitions import record_sent

__all__ = ["SentRecord", "record_sent_batch"]


@dataclass(frozen=True, slots=True)
class SentRecord:
    """One accepted send, as :func:`record_sent` takes it (for writing many at once)."""

    intent_id: str
    attempt: int
    provider_ref: str
    status: str
    detail: Mapping[str, str | int]
    now: datetime


def record_sent_batch(conn: Connection, records: Sequence[SentRecord]) -> None:
    """:func:`record_sent` for every record, in the caller's one transaction.

    PostgreSQL: one statement for the whole batch (the per-record statements cost a round trip,
    and their transaction a WAL flush, each); other databases: one record at a time.
    """
    if conn.dialect.name != "postgresql":
        for r in records:
            record_sent(
                conn,
                r.intent_id,
                r.attempt,
                provider_ref=r.provider_ref,
                status=r.status,
                detail=r.detail,
                now=r.now,
            )
        return
    params = {
        "iids": [r.intent_id for r in records],
        "attempts": [r.attempt for r in records],
        "refs": [r.provider_ref for r in records],
        "details": [json.dumps({"status": r.status, **r.detail}, sort_keys=True) for r in records],
        "nows": [r.now for r in records],
    }
    early = [row[0] for row in conn.exec_driver_sql(RECORD_SENT_BATCH, params)]
    for receipt_id in early:
        apply_receipt(conn, receipt_id, now=max(r.now for r in records))
