"""The worker hot path's PostgreSQL statements (the claim, and recording sends), built once.

See :mod:`dunning.ledger.transitions` and :mod:`dunning.ledger.group_commit` for what they do;
SQLite and other databases take the statement-per-step path there.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.dialects import postgresql

from dunning.ledger.schema import attempts, audit, intents
from dunning.ledger.states import AFTER_SENT
from dunning.records import IntentState

__all__ = ["PG_STATEMENTS", "RECORD_SENT_BATCH", "PostgresStatements"]


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


PG_STATEMENTS = PostgresStatements()

#: Recording a batch of accepted sends in one statement (driver SQL, psycopg adapts the lists
#: to arrays): each attempt becomes ``sent``, each intent ``sent`` unless a receipt already
#: moved it further, and the receipts that came before their send are looked up to be applied.
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
