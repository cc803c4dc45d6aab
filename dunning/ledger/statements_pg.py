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

__all__ = [
    "CLAIM_GATED_BATCH",
    "CLAIM_HISTORY_CONTACTS",
    "CLAIM_HISTORY_STANDING",
    "CLAIM_LOCK_PEOPLE",
    "CLAIM_UPSERT_BATCH",
    "CLAIM_WRITE_BATCH",
    "INTENT_COLUMNS",
    "PG_STATEMENTS",
    "RECORD_SENT_BATCH",
    "RECORD_SENT_JSON",
    "PostgresStatements",
]


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

# --- the batched claim (dunning.ledger.claim_batch_pg), driver SQL --------------------------

#: The ``intents`` columns a claim's upsert writes for an intent it has not seen, with the
#: type each is read as from the JSON rows.
_INTENT_ARRAYS = {
    "intent_id": "varchar", "account_id": "varchar", "person_id": "varchar",
    "debt_id": "varchar", "channel": "varchar", "jurisdiction": "varchar", "stage": "varchar",
    "strategy": "varchar", "variant": "varchar", "step": "varchar", "state": "varchar",
    "attempts": "int", "sending_since": "timestamptz", "published_at": "timestamptz",
    "created_at": "timestamptz", "updated_at": "timestamptz", "expires_at": "timestamptz",
    "last_error": "text", "provider_ref": "varchar", "body": "text",
}  # fmt: skip
INTENT_COLUMNS = tuple(_INTENT_ARRAYS)

#: The people's advisory locks (the key of :func:`dunning.ledger.locks.lock_people`), taken in
#: the order of the array, which the caller sorts as lock_people does.
CLAIM_LOCK_PEOPLE = (
    "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
    "FROM unnest(%(people)s::text[]) WITH ORDINALITY AS p(k, n)"
)

#: Creates the intents the ledger has not seen and row-locks all of them (the conflict arm
#: takes the same lock as SELECT FOR UPDATE); returns each one's state as it stands.
_COLUMN_LIST = ", ".join(INTENT_COLUMNS)
_COLUMN_TYPES = ", ".join(f"{c} {t}" for c, t in _INTENT_ARRAYS.items())
CLAIM_UPSERT_BATCH = (
    "INSERT INTO intents ("  # noqa: S608  built from the constants above, no input
    + _COLUMN_LIST
    + ") SELECT "
    + _COLUMN_LIST
    + " FROM json_to_recordset(%(rows)s::json) AS v("
    + _COLUMN_TYPES
    + ") ON CONFLICT (intent_id) DO UPDATE SET intent_id = EXCLUDED.intent_id "
    "RETURNING intent_id, state, attempts, sending_since"
)

#: What read_history reads, for every person of the batch at once (caps window applied per
#: intent by the caller).
CLAIM_HISTORY_CONTACTS = """
SELECT person_id, intent_id, debt_id, channel, started_at, phone, template, dial_outcome
FROM attempts
WHERE person_id = ANY(%(people)s::varchar[]) AND started_at >= %(since)s
    AND outcome <> ALL(%(not_contacts)s::varchar[])
ORDER BY started_at, id
"""
CLAIM_HISTORY_STANDING = """
SELECT person_id, channel, debt_id, reason, source, created_at, until, starts_at
FROM suppressions
WHERE person_id = ANY(%(people)s::varchar[]) AND removed_at IS NULL
ORDER BY created_at, id
"""

#: The claimed intents: each → sending, its attempt row, its ``allow`` audit row. The rows come
#: as one JSON text (encoding it is one C call; psycopg dumps array parameters element by
#: element in Python), numbered by ``n`` so that ids follow the batch's order.
CLAIM_WRITE_BATCH = """
WITH v AS (
    SELECT * FROM json_to_recordset(%(rows)s::json) AS v(intent_id varchar, attempt_no int,
        at timestamptz, channel varchar, person_id varchar, debt_id varchar, template varchar,
        phone varchar, dial_outcome varchar, rule_id varchar, pack_version varchar,
        detail text, n int)
), to_sending AS (
    UPDATE intents SET state = 'sending', sending_since = v.at, attempts = v.attempt_no,
        updated_at = v.at
    FROM v WHERE intents.intent_id = v.intent_id
    RETURNING intents.intent_id
), new_attempts AS (
    INSERT INTO attempts (intent_id, attempt_no, worker, started_at, outcome, channel,
        person_id, debt_id, template, phone, dial_outcome)
    SELECT intent_id, attempt_no, %(worker)s, at, 'sending', channel, person_id, debt_id,
        template, phone, dial_outcome
    FROM v ORDER BY n
    RETURNING attempts.id
)
INSERT INTO audit (at, intent_id, event, rule_id, pack_version, detail)
SELECT at, intent_id, 'allow', rule_id, pack_version, detail FROM v ORDER BY n
"""

#: The intents the gate stopped: each → its gated state, with the verdict's audit row.
CLAIM_GATED_BATCH = """
WITH v AS (
    SELECT * FROM json_to_recordset(%(rows)s::json) AS v(intent_id varchar, state varchar,
        at timestamptz, last_error text, event varchar, rule_id varchar, pack_version varchar,
        detail text, n int)
), moved AS (
    UPDATE intents SET state = v.state, sending_since = NULL, updated_at = v.at,
        last_error = v.last_error
    FROM v WHERE intents.intent_id = v.intent_id
    RETURNING intents.intent_id
)
INSERT INTO audit (at, intent_id, event, rule_id, pack_version, detail)
SELECT at, intent_id, event, rule_id, pack_version, detail FROM v ORDER BY n
"""

#: :data:`RECORD_SENT_BATCH` with its rows as one JSON text (the worker's async writer).
RECORD_SENT_JSON = RECORD_SENT_BATCH.replace(
    """SELECT * FROM unnest(
        %(iids)s::varchar[], %(attempts)s::int[], %(refs)s::varchar[], %(details)s::text[],
        %(nows)s::timestamptz[]
    ) AS v(intent_id, attempt_no, provider_ref, detail, at)""",
    """SELECT * FROM json_to_recordset(%(rows)s::json) AS v(intent_id varchar, attempt_no int,
        provider_ref varchar, detail text, at timestamptz)""",
)
