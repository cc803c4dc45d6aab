"""Read-side views of the ledger: one intent's story, reports, what the evaluator learns from
earlier runs, and what a load test measured.

Each method runs in a read-only transaction of its own; a database fault comes out as
LedgerError.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Connection, func, select

from dunning.intents import Channel
from dunning.ledger.core import LedgerCore
from dunning.ledger.queries import TimelineEvent, read_counts, read_timeline
from dunning.ledger.receipts_reports import ChannelSummary, intent_overview, receipts_summary
from dunning.ledger.reports import VariantRow, variant_report
from dunning.ledger.schema import attempts, intents, suppressions
from dunning.records import IntentState

__all__ = ["AccountEvent", "IntentTiming", "LedgerReads"]

#: Dial outcomes of a call that did not reach the person.
_UNANSWERED = ("no_answer", "busy", "voicemail", "not_in_service")


@dataclass(frozen=True, slots=True)
class AccountEvent:
    """Something the ledger knows about an account's earlier contacts.

    ``delivered``: an intent on ``channel`` was delivered; ``unanswered_call``: a call was not
    answered (no answer, busy, voicemail, not in service); ``suppression``: a live standing
    suppression (no bounds) of the account's person, with its ``reason`` and ``channel``
    (None: every channel).
    """

    kind: Literal["delivered", "unanswered_call", "suppression"]
    at: datetime
    channel: Channel | None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class IntentTiming:
    """One intent of a load test: when it was created and sent, and its failed and released
    (rate-limited) attempts."""

    intent_id: str
    created_at: datetime
    state: str
    sent_at: datetime | None
    failed_attempts: int
    released_attempts: int

    @property
    def latency_s(self) -> float | None:
        if self.sent_at is None:
            return None
        return (self.sent_at - self.created_at).total_seconds()


class LedgerReads(LedgerCore):
    """Read-side views (see the module docstring)."""

    def get_state(self, intent_id: str) -> IntentState | None:
        with self._tx(read=True) as conn:
            value = conn.scalar(select(intents.c.state).where(intents.c.intent_id == intent_id))
        return None if value is None else IntentState(value)

    def timeline(self, intent_id: str) -> list[TimelineEvent]:
        with self._tx(read=True) as conn:
            return read_timeline(conn, intent_id)

    def counts_by_state(self) -> dict[tuple[str, str], int]:
        """(channel, state) -> number of intents."""
        with self._tx(read=True) as conn:
            return read_counts(conn)

    def intent_overview(self, intent_id: str) -> dict[str, Any] | None:
        """The intent's row (no recipient data), its person's suppressions and inbound
        messages; None when the ledger does not know ``intent_id``."""
        with self._tx(read=True, what=f"reading intent {intent_id}") as conn:
            return intent_overview(conn, intent_id)

    def receipts_summary(self, *, since: datetime, until: datetime) -> list[ChannelSummary]:
        """Receipts received in [since, until) by channel and status, with rates."""
        with self._tx(read=True, what="reading the receipts summary") as conn:
            return receipts_summary(conn, since=since, until=until)

    def variant_report(self, *, since: datetime, until: datetime) -> list[VariantRow]:
        """One row per (strategy, variant, stage) of intents created in [since, until)."""
        with self._tx(read=True, what="reading the variants report") as conn:
            return variant_report(conn, since=since, until=until)

    def deferred_intents(self) -> list[tuple[str, str, str | None]]:
        """(intent_id, channel, last_error) of every deferred intent."""
        with self._tx(read=True) as conn:
            rows = conn.execute(
                select(intents.c.intent_id, intents.c.channel, intents.c.last_error).where(
                    intents.c.state == IntentState.DEFERRED.value
                )
            ).all()
        return [(intent_id, channel, reason) for intent_id, channel, reason in rows]

    def account_events(
        self, account_ids: Sequence[str], *, since: datetime
    ) -> dict[str, list[AccountEvent]]:
        """What the ledger knows of ``account_ids`` since ``since`` (standing suppressions
        whenever they were made), per account that has any: deliveries, then unanswered
        calls, then suppressions."""
        with self._tx(read=True) as conn:
            return _account_events(conn, list(account_ids), since)

    def intent_states(self, account_prefix: str) -> dict[str, int]:
        """State -> number of intents whose account id starts with ``account_prefix``."""
        query = (
            select(intents.c.state, func.count())
            .where(intents.c.account_id.like(f"{account_prefix}%"))
            .group_by(intents.c.state)
        )
        with self._tx(read=True) as conn:
            return {str(state): int(n) for state, n in conn.execute(query)}

    def intent_timings(self, account_prefix: str) -> list[IntentTiming]:
        """One row per intent whose account id starts with ``account_prefix``: its send time
        and its failed and released attempts."""
        query = (
            select(
                intents.c.intent_id,
                intents.c.created_at,
                intents.c.state,
                attempts.c.outcome,
                attempts.c.finished_at,
            )
            .select_from(intents.outerjoin(attempts, attempts.c.intent_id == intents.c.intent_id))
            .where(intents.c.account_id.like(f"{account_prefix}%"))
        )
        rows: dict[str, tuple[datetime, str]] = {}
        sent: dict[str, datetime | None] = {}
        outcomes: dict[str, Counter[str]] = {}
        with self._tx(read=True) as conn:
            for intent_id, created_at, state, outcome, finished_at in conn.execute(query):
                rows.setdefault(intent_id, (created_at, str(state)))
                sent.setdefault(intent_id, None)
                counts = outcomes.setdefault(intent_id, Counter())
                if outcome is not None:
                    counts[outcome] += 1
                if outcome == "sent":
                    sent[intent_id] = finished_at
        return [
            IntentTiming(
                intent_id=intent_id,
                created_at=created_at,
                state=state,
                sent_at=sent[intent_id],
                failed_attempts=outcomes[intent_id]["failed"],
                released_attempts=outcomes[intent_id]["released"],
            )
            for intent_id, (created_at, state) in rows.items()
        ]


def _account_events(
    conn: Connection, account_ids: list[str], since: datetime
) -> dict[str, list[AccountEvent]]:
    events: dict[str, list[AccountEvent]] = defaultdict(list)
    for account, channel, at in conn.execute(
        select(intents.c.account_id, intents.c.channel, intents.c.updated_at).where(
            intents.c.account_id.in_(account_ids),
            intents.c.state == IntentState.DELIVERED.value,
            intents.c.updated_at >= since,
        )
    ):
        events[account].append(AccountEvent("delivered", at, Channel(channel)))
    for account, at in conn.execute(
        select(intents.c.account_id, attempts.c.started_at)
        .join(intents, intents.c.intent_id == attempts.c.intent_id)
        .where(
            intents.c.account_id.in_(account_ids),
            attempts.c.channel == Channel.VOICE.value,
            attempts.c.dial_outcome.in_(_UNANSWERED),
            attempts.c.started_at >= since,
        )
    ):
        events[account].append(AccountEvent("unanswered_call", at, Channel.VOICE))
    people: dict[str, set[str]] = defaultdict(set)
    for account, person in conn.execute(
        select(intents.c.account_id, intents.c.person_id)
        .where(intents.c.account_id.in_(account_ids))
        .distinct()
    ):
        people[person].add(account)
    if people:
        for person, reason, channel, at in conn.execute(
            select(
                suppressions.c.person_id,
                suppressions.c.reason,
                suppressions.c.channel,
                suppressions.c.created_at,
            ).where(
                suppressions.c.person_id.in_(list(people)),
                suppressions.c.removed_at.is_(None),
                # A bounded one (a promise to pay) ends on its own: not a standing outcome.
                suppressions.c.until.is_(None),
                suppressions.c.starts_at.is_(None),
            )
        ):
            event = AccountEvent("suppression", at, Channel(channel) if channel else None, reason)
            for account in people[person]:
                events[account].append(event)
    return dict(events)
