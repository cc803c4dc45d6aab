"""The worker hot path's statements (claim, history, record_sent), built once.

See :mod:`dunning.ledger.transitions` for what they do; SQLite and other databases take the
statement-per-step path there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql

from dunning.ledger.queries import NOT_CONTACTS
from dunning.ledger.queries import _attempt as history_attempt
from dunning.ledger.queries import _suppression as history_suppression
from dunning.ledger.schema import attempts, audit, intents, receipts, suppressions
from dunning.records import ContactHistory, IntentState

__all__ = [
    "AFTER_SENT",
    "PG_STATEMENTS",
    "RECORD_SENT_BATCH",
    "PostgresStatements",
    "read_history_prebuilt",
]

AFTER_SENT = (IntentState.DELIVERED, IntentState.FAILED, IntentState.UNDELIVERED)


class PostgresStatements:
    """The hot path's PostgreSQL statements, built once with bind parameters.

    Building a statement per call (``.values(**row)``, ``insert().excluded``) and computing
    its cache key was about a quarter of a worker's CPU (py-spy, GIL samples); executing a
    prebuilt statement with a parameter dict skips both.
    """

    def __init__(self) -> None:
        def p(name: str, column: Any) -> Any:
            return bindparam(name, type_=column.type)

        upsert = postgresql.insert(intents)
        self.upsert = upsert.on_conflict_do_update(
            index_elements=[intents.c.intent_id], set_={"intent_id": upsert.excluded.intent_id}
        ).returning(intents.c.state, intents.c.attempts, intents.c.sending_since)
        iid, now = p("p_iid", intents.c.intent_id), p("p_now", intents.c.updated_at)
        attempt_no = p("p_attempt", attempts.c.attempt_no)
        to_sending = (
            update(intents)
            .where(intents.c.intent_id == iid)
            .values(
                state=IntentState.SENDING.value,
                sending_since=now,
                attempts=attempt_no,
                updated_at=now,
            )
            .returning(intents.c.intent_id)
            .cte("to_sending")
        )
        new_attempt = (
            insert(attempts)
            .values(
                intent_id=iid,
                attempt_no=attempt_no,
                worker=p("p_worker", attempts.c.worker),
                started_at=now,
                outcome=IntentState.SENDING.value,
                channel=p("p_channel", attempts.c.channel),
                person_id=p("p_person", attempts.c.person_id),
                debt_id=p("p_debt", attempts.c.debt_id),
                template=p("p_template", attempts.c.template),
                phone=p("p_phone", attempts.c.phone),
                dial_outcome=p("p_dial", attempts.c.dial_outcome),
            )
            .returning(attempts.c.id)
            .cte("new_attempt")
        )
        self.claim_write = (
            insert(audit)
            .values(
                at=now,
                intent_id=iid,
                event="allow",
                rule_id=p("p_rule", audit.c.rule_id),
                pack_version=p("p_pack", audit.c.pack_version),
                detail=p("p_detail", audit.c.detail),
            )
            .add_cte(to_sending)
            .add_cte(new_attempt)
        )
        ref = p("p_ref", attempts.c.provider_ref)
        attempt_sent = (
            update(attempts)
            .where(
                attempts.c.intent_id == iid,
                attempts.c.attempt_no == attempt_no,
                attempts.c.outcome != "released",
            )
            .values(
                outcome=IntentState.SENT.value,
                finished_at=now,
                provider_ref=ref,
                detail=p("p_detail", attempts.c.detail),
            )
            .returning(attempts.c.id)
            .cte("attempt_sent")
        )
        intent_sent = (
            update(intents)
            .where(
                intents.c.intent_id == iid,
                intents.c.state.not_in([s.value for s in AFTER_SENT]),
            )
            .values(
                state=IntentState.SENT.value,
                provider_ref=ref,
                sending_since=None,
                last_error=None,
                updated_at=now,
            )
            .returning(intents.c.intent_id)
            .cte("intent_sent")
        )
        self.record_sent = (
            select(receipts.c.id)
            .where(receipts.c.provider_ref == ref, receipts.c.intent_id.is_(None))
            .order_by(receipts.c.rank)
            .add_cte(attempt_sent)
            .add_cte(intent_sent)
        )


PG_STATEMENTS = PostgresStatements()

#: ``record_sent`` for a batch of attempts in one statement (driver SQL, psycopg adapts the
#: lists to arrays): the same two updates and early-receipt lookup as
#: :attr:`PostgresStatements.record_sent`, joined to the unnest()ed batch.
RECORD_SENT_BATCH = """
WITH v AS (
    SELECT * FROM unnest(
        %(iids)s::varchar[], %(attempts)s::int[], %(refs)s::varchar[], %(details)s::text[],
        %(nows)s::timestamptz[]
    ) AS v(intent_id, attempt_no, provider_ref, detail, at)
), attempt_sent AS (
    UPDATE attempts SET outcome = 'sent', finished_at = v.at, provider_ref = v.provider_ref,
        detail = v.detail
    FROM v
    WHERE attempts.intent_id = v.intent_id AND attempts.attempt_no = v.attempt_no
        AND attempts.outcome <> 'released'
    RETURNING attempts.id
), intent_sent AS (
    UPDATE intents SET state = 'sent', provider_ref = v.provider_ref, sending_since = NULL,
        last_error = NULL, updated_at = v.at
    FROM v
    WHERE intents.intent_id = v.intent_id AND intents.state NOT IN (%(after_sent)s)
    RETURNING intents.intent_id
)
SELECT receipts.id FROM receipts JOIN v ON receipts.provider_ref = v.provider_ref
WHERE receipts.intent_id IS NULL
ORDER BY receipts.rank
""".replace("%(after_sent)s", ", ".join(f"'{s.value}'" for s in AFTER_SENT))


def _history_statements() -> tuple[Any, Any]:
    person = bindparam("p_person", type_=attempts.c.person_id.type)
    since = bindparam("p_since", type_=attempts.c.started_at.type)
    contacts = (
        select(attempts)
        .where(
            attempts.c.person_id == person,
            attempts.c.started_at >= since,
            attempts.c.outcome.not_in(NOT_CONTACTS),
        )
        .order_by(attempts.c.started_at, attempts.c.id)
    )
    active = (
        select(suppressions)
        .where(
            suppressions.c.person_id == bindparam("p_person", type_=suppressions.c.person_id.type),
            suppressions.c.removed_at.is_(None),
        )
        .order_by(suppressions.c.created_at, suppressions.c.id)
    )
    return contacts, active


_HISTORY_ATTEMPTS, _HISTORY_SUPPRESSIONS = _history_statements()


def read_history_prebuilt(conn: Connection, person_id: str, *, since: datetime) -> ContactHistory:
    """:func:`dunning.ledger.queries.read_history` with statements built once (same rows)."""
    attempt_rows = conn.execute(_HISTORY_ATTEMPTS, {"p_person": person_id, "p_since": since})
    suppression_rows = conn.execute(_HISTORY_SUPPRESSIONS, {"p_person": person_id})
    return ContactHistory(
        person_id=person_id,
        attempts=tuple(history_attempt(r) for r in attempt_rows),
        suppressions=tuple(history_suppression(r) for r in suppression_rows),
    )
