"""Claims of many intents in one PostgreSQL transaction, on the event loop, in two round trips.

The transaction boundary and why it keeps exactly-once are in docs/design.md ("Claims of the
messages that arrive together share one transaction"). In short:

    round trip 1 (pipelined): BEGIN; advisory locks of the people, sorted; one upsert that
        creates missing intents and row-locks all of them; the people's contacts and standing
        suppressions, read once
    in Python: per intent, in arrival order, the same decisions as the one-intent claim
        (:func:`dunning.ledger.transitions.claim_intent`); the gate sees the history read under
        the locks plus what this batch already claimed for the same person
    round trip 2 (pipelined): the claimed intents' writes, the gated intents' writes, COMMIT

The statements are driver SQL on one psycopg async connection: SQLAlchemy's per-execute
machinery was a quarter of a worker's CPU. The rare cases (an intent in ``sending`` past the
reconcile window, a second copy of an intent in the same batch) come back as ``None`` for the
caller to claim one at a time after this transaction committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from dunning.clock import utc
from dunning.errors import LedgerError
from dunning.intents import Channel, ContactIntent
from dunning.ledger.group_commit import SentRecord, sent_detail
from dunning.ledger.queries import NOT_CONTACTS, Claim, intent_values
from dunning.ledger.statements_pg import (
    CLAIM_GATED_BATCH,
    CLAIM_HISTORY_CONTACTS,
    CLAIM_HISTORY_STANDING,
    CLAIM_LOCK_PEOPLE,
    CLAIM_UPSERT_BATCH,
    CLAIM_WRITE_BATCH,
    INTENT_COLUMNS,
    RECORD_SENT_JSON,
)
from dunning.ledger.transitions import GATED_STATE, HISTORY_WINDOW, decision_audit
from dunning.records import (
    TERMINAL_STATES,
    ContactAttempt,
    ContactHistory,
    DialOutcome,
    GateDecision,
    IntentState,
    Suppression,
)

__all__ = ["BatchClaims", "BatchSends", "ClaimRequest"]

CONNECT_TIMEOUT_S = 10
#: An async connection unused this long is closed (reopened on the next batch).
IDLE_CLOSE_S = 5.0


@dataclass(frozen=True, slots=True)
class ClaimRequest:
    """One delivery asking to be sent: the claim of :meth:`dunning.ledger.Ledger.claim`."""

    intent: ContactIntent
    now: datetime
    gate: Callable[[ContactHistory], GateDecision] | None


class _AsyncLedgerConnection:
    """One async connection (opened on first use, reopened after a fault), one transaction
    at a time on it."""

    def __init__(self, conninfo: str, *, application_name: str) -> None:
        self._conninfo = conninfo
        self._application_name = application_name
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._one_at_a_time = asyncio.Lock()
        self._last_used = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()

    async def aclose(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    def _used(self) -> None:
        """Note a transaction; the connection closes after IDLE_CLOSE_S without one, as the
        worker's pool trims its idle connections (docs/operations.md): a worker between bursts
        holds only the few connections it keeps."""
        loop = asyncio.get_running_loop()
        self._last_used = loop.time()
        if self._idle_timer is None:
            self._idle_timer = loop.call_later(IDLE_CLOSE_S, self._close_if_idle)

    def _close_if_idle(self) -> None:
        self._idle_timer = None
        loop = asyncio.get_running_loop()
        idle_s = loop.time() - self._last_used
        if self._conn is None:
            return
        if idle_s < IDLE_CLOSE_S or self._one_at_a_time.locked():
            delay = max(0.1, IDLE_CLOSE_S - idle_s)
            self._idle_timer = loop.call_later(delay, self._close_if_idle)
            return
        # Taken away here, on the loop, while no transaction holds it: the next one reconnects.
        conn, self._conn = self._conn, None
        task = asyncio.ensure_future(conn.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    @contextlib.asynccontextmanager
    async def _transaction(self, what: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The connection for one transaction; any fault closes it (rolling back what the
        transaction wrote), a database fault comes out as LedgerError("<what> failed: ...")."""
        async with self._one_at_a_time:
            try:
                yield await self._connect()
                self._used()
            except psycopg.Error as exc:
                await self.aclose()  # a broken connection is not reused
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise LedgerError(f"{what} failed: {type(exc).__name__}: {first}") from exc
            except BaseException:
                await self.aclose()
                raise

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            conn = await psycopg.AsyncConnection.connect(
                self._conninfo,
                application_name=self._application_name,
                connect_timeout=CONNECT_TIMEOUT_S,
            )
            await conn.execute("SET TIME ZONE 'UTC'")
            await conn.commit()
            self._conn = conn
        return self._conn


class BatchClaims(_AsyncLedgerConnection):
    """Claims batches of intents, one transaction per batch."""

    def __init__(
        self, conninfo: str, *, worker: str, reconcile_after_s: float, application_name: str
    ) -> None:
        super().__init__(conninfo, application_name=application_name)
        self._worker = worker
        self._reconcile_after = timedelta(seconds=reconcile_after_s)

    async def claim_many(self, requests: Sequence[ClaimRequest]) -> list[Claim | None]:
        """Decide every request in one transaction; ``None`` for those to claim one at a time.

        Raises LedgerError (nothing of the batch is written) on any database fault.
        """
        async with self._transaction("batched claim") as conn:
            return await self._claim_many(conn, requests)

    async def _claim_many(
        self, conn: psycopg.AsyncConnection[Any], requests: Sequence[ClaimRequest]
    ) -> list[Claim | None]:
        batch: list[int] = []  # indexes of the requests this transaction decides
        seen: set[str] = set()
        for index, request in enumerate(requests):
            if request.intent.intent_id not in seen:  # a second copy: after the commit
                seen.add(request.intent.intent_id)
                batch.append(index)
        if not batch:
            return [None] * len(requests)
        chosen = [requests[i] for i in batch]
        people = sorted({r.intent.person_id for r in chosen})
        since = min(r.now for r in chosen) - HISTORY_WINDOW
        async with conn.pipeline() as pipeline:
            locks, upsert, contacts, standing = (conn.cursor() for _ in range(4))
            await locks.execute(CLAIM_LOCK_PEOPLE, {"people": people})
            await upsert.execute(CLAIM_UPSERT_BATCH, {"rows": _upsert_rows(chosen)})
            await contacts.execute(
                CLAIM_HISTORY_CONTACTS,
                {"people": people, "since": since, "not_contacts": list(NOT_CONTACTS)},
            )
            await standing.execute(CLAIM_HISTORY_STANDING, {"people": people})
            await pipeline.sync()
            rows = {row[0]: row for row in await upsert.fetchall()}
            history = _Histories(await contacts.fetchall(), await standing.fetchall())
            decided = _Decisions(self._worker)
            results: list[Claim | None] = [None] * len(requests)
            for index in batch:
                results[index] = decided.decide(
                    requests[index], rows[requests[index].intent.intent_id], history,
                    self._reconcile_after,
                )  # fmt: skip
            writes = conn.cursor()
            if decided.claimed:
                params = {"worker": self._worker, "rows": json_rows(decided.claimed)}
                await writes.execute(CLAIM_WRITE_BATCH, params)
            if decided.gated:
                await conn.cursor().execute(CLAIM_GATED_BATCH, {"rows": json_rows(decided.gated)})
            await conn.commit()
        return results


class _Histories:
    """The batch's contact history, per person, as read under the locks, plus the attempts the
    batch has claimed so far (the next intent of the same person must count them)."""

    def __init__(self, contacts: list[tuple[Any, ...]], standing: list[tuple[Any, ...]]) -> None:
        self._attempts: dict[str, list[ContactAttempt]] = {}
        for person, intent_id, debt, channel, at, phone, template, dial in contacts:
            self._attempts.setdefault(person, []).append(
                ContactAttempt(
                    intent_id=intent_id,
                    debt_id=debt,
                    channel=Channel(channel),
                    at=_aware(at),
                    phone=phone,
                    template=template,
                    dial_outcome=None if dial is None else DialOutcome(dial),
                )
            )
        self._suppressions: dict[str, list[Suppression]] = {}
        for person, channel, debt, reason, source, created, until, starts in standing:
            self._suppressions.setdefault(person, []).append(
                Suppression(
                    person_id=person,
                    channel=None if channel is None else Channel(channel),
                    reason=reason,
                    source=source,
                    created_at=_aware(created),
                    debt_id=debt,
                    until=None if until is None else _aware(until),
                    starts_at=None if starts is None else _aware(starts),
                )
            )

    def of(self, person_id: str, now: datetime) -> ContactHistory:
        """What :func:`dunning.ledger.queries.read_history` would read at ``now``."""
        since = now - HISTORY_WINDOW
        return ContactHistory(
            person_id=person_id,
            attempts=tuple(a for a in self._attempts.get(person_id, ()) if a.at >= since),
            suppressions=tuple(self._suppressions.get(person_id, ())),
        )

    def add(self, person_id: str, attempt: ContactAttempt) -> None:
        self._attempts.setdefault(person_id, []).append(attempt)


class _Decisions:
    """The decisions of one batch, gathered as the arrays its two write statements take."""

    def __init__(self, worker: str) -> None:
        self.claimed: list[dict[str, Any]] = []
        self.gated: list[dict[str, Any]] = []

    def decide(
        self,
        request: ClaimRequest,
        row: tuple[Any, ...],
        history: _Histories,
        reconcile_after: timedelta,
    ) -> Claim | None:
        """The decisions of :func:`dunning.ledger.transitions.claim_intent`, in the same order."""
        intent, now = request.intent, utc(request.now)
        state, attempt = IntentState(row[1]), int(row[2])
        if state in TERMINAL_STATES:
            return Claim("done", state, attempt)
        if state is IntentState.SENDING:
            since = None if row[3] is None else _aware(row[3])
            if since is not None and since + reconcile_after > now:
                return Claim("in_doubt", state, attempt, sending_since=since)
            return None  # receipts or a reclaim: the one-intent claim, after this commit
        decision = None
        if request.gate is not None:
            decision = request.gate(history.of(intent.person_id, now))
            if decision.action != "allow":
                self._gate(intent.intent_id, attempt, decision, now)
                return Claim("gated", GATED_STATE[decision.action], attempt, decision)
        attempt += 1
        phoned = intent.channel in (Channel.SMS, Channel.VOICE)
        dial = DialOutcome.PENDING if intent.channel is Channel.VOICE else None
        phone = intent.recipient.phone if phoned else None
        allow = decision_audit(intent.intent_id, "allow", decision, now, attempt=attempt)
        self.claimed.append(
            {
                "intent_id": intent.intent_id, "attempt_no": attempt, "at": now,
                "channel": intent.channel.value, "person_id": intent.person_id,
                "debt_id": intent.debt_id, "template": intent.template.name, "phone": phone,
                "dial_outcome": None if dial is None else dial.value,
                "rule_id": allow["rule_id"], "pack_version": allow["pack_version"],
                "detail": allow["detail"], "n": len(self.claimed),
            }
        )  # fmt: skip
        history.add(
            intent.person_id,
            ContactAttempt(
                intent_id=intent.intent_id,
                debt_id=intent.debt_id,
                channel=intent.channel,
                at=now,
                phone=phone,
                template=intent.template.name,
                dial_outcome=dial,
            ),
        )
        return Claim("claimed", IntentState.SENDING, attempt, decision, now)

    def _gate(self, intent_id: str, attempt: int, decision: GateDecision, now: datetime) -> None:
        audit = decision_audit(intent_id, decision.action, decision, now, attempt=attempt)
        self.gated.append(
            {
                "intent_id": intent_id, "state": GATED_STATE[decision.action].value, "at": now,
                "last_error": f"{decision.rule_id}: {decision.reason}", "event": decision.action,
                "rule_id": audit["rule_id"], "pack_version": audit["pack_version"],
                "detail": audit["detail"], "n": len(self.gated),
            }
        )  # fmt: skip


def _upsert_rows(requests: Sequence[ClaimRequest]) -> str:
    rows = [intent_values(r.intent, now=utc(r.now), published=True) for r in requests]
    return json_rows([{c: row[c] for c in INTENT_COLUMNS} for row in rows])


def json_rows(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as the JSON text ``json_to_recordset`` reads (datetimes in ISO 8601 with offset)."""
    return json.dumps(rows, default=_iso, ensure_ascii=False)


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class BatchSends(_AsyncLedgerConnection):
    """Group-committed ``record_sent`` batches on an async connection of their own.

    The batch statement (:data:`dunning.ledger.statements_pg.RECORD_SENT_JSON`) runs with its
    COMMIT in one round trip. When it finds receipts that came before their send, the
    transaction is rolled back and :meth:`record_many` returns False: applying them takes the
    ledger's statement-per-step path (``Ledger.record_sent_many``), in one transaction with the
    records, as before.
    """

    async def record_many(self, records: Sequence[SentRecord]) -> bool:
        """Record ``records`` in one transaction; False (nothing written) when early receipts
        need applying. Raises LedgerError on a database fault."""
        async with self._transaction("recording sends") as conn:
            async with conn.pipeline() as pipeline:
                cursor = conn.cursor()
                await cursor.execute(RECORD_SENT_JSON, {"rows": _sent_rows(records)})
                await pipeline.sync()
                if await cursor.fetchall():
                    await conn.rollback()
                    return False
                await conn.commit()
            return True


def _sent_rows(records: Sequence[SentRecord]) -> str:
    return json_rows(
        [
            {"intent_id": r.intent_id, "attempt_no": r.attempt, "provider_ref": r.provider_ref,
             "detail": sent_detail(r), "at": utc(r.now)}
            for r in records
        ]
    )  # fmt: skip
