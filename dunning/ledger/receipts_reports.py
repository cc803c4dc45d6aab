"""Read-side reports over receipts: the ``dunning receipts`` summary and one intent's overview."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from dunning.clock import utc
from dunning.intents import Channel
from dunning.ledger.queries import read_intent
from dunning.ledger.schema import attempts, inbound_messages, intents, receipts, suppressions

__all__ = ["DELIVERED_STATUSES", "ChannelSummary", "intent_overview", "receipts_summary"]

#: Receipt statuses that mean the contact reached the person (per channel).
DELIVERED_STATUSES: dict[str, frozenset[str]] = {
    Channel.SMS.value: frozenset({"delivered", "read"}),
    Channel.VOICE.value: frozenset({"completed"}),
    Channel.EMAIL.value: frozenset({"delivered", "complained"}),
    Channel.LETTER.value: frozenset({"mailed"}),
}
_FAILED_STATUSES = frozenset(
    {"failed", "undelivered", "busy", "no-answer", "canceled", "bounced", "returned"}
)


@dataclass
class ChannelSummary:
    """Receipts of one channel in a time range.

    ``delivery_rate`` is delivered / (delivered + failed) over intents with a final receipt
    in the range (None without any); ``median_to_delivered_s`` runs from the recorded send to
    the delivering receipt.
    """

    channel: str
    counts: dict[str, int] = field(default_factory=dict)
    delivered: int = 0
    failed: int = 0
    median_to_delivered_s: float | None = None

    @property
    def delivery_rate(self) -> float | None:
        finals = self.delivered + self.failed
        return None if finals == 0 else self.delivered / finals


def receipts_summary(conn: Connection, *, since: datetime, until: datetime) -> list[ChannelSummary]:
    """Counts by channel and status of receipts received in [since, until), with rates."""
    since, until = utc(since), utc(until)
    in_range = (receipts.c.received_at >= since, receipts.c.received_at < until)
    counts = conn.execute(
        select(receipts.c.channel, receipts.c.status, func.count())
        .where(*in_range)
        .group_by(receipts.c.channel, receipts.c.status)
    ).all()
    finals = conn.execute(
        select(
            receipts.c.channel,
            receipts.c.status,
            receipts.c.intent_id,
            receipts.c.received_at,
            func.max(attempts.c.finished_at),
        )
        .join(attempts, attempts.c.intent_id == receipts.c.intent_id, isouter=True)
        .where(*in_range, receipts.c.intent_id.is_not(None))
        .group_by(
            receipts.c.id,
            receipts.c.channel,
            receipts.c.status,
            receipts.c.intent_id,
            receipts.c.received_at,
        )
        .order_by(receipts.c.received_at, receipts.c.id)
    ).all()
    summaries: dict[str, ChannelSummary] = {}
    for channel, status, count in counts:
        summary = summaries.setdefault(channel, ChannelSummary(channel))
        summary.counts[status] = int(count)
    outcome: dict[tuple[str, str], bool] = {}
    to_delivered: dict[str, list[float]] = {}
    for channel, status, intent_id, received_at, sent_at in finals:
        delivered = status in DELIVERED_STATUSES.get(channel, frozenset())
        if not delivered and status not in _FAILED_STATUSES:
            continue
        key = (channel, intent_id)
        if key in outcome:
            continue  # one verdict per intent: the first final receipt decides, as it does
        outcome[key] = delivered
        if delivered and sent_at is not None and received_at >= sent_at:
            to_delivered.setdefault(channel, []).append((received_at - sent_at).total_seconds())
    for (channel, _), delivered in outcome.items():
        summary = summaries.setdefault(channel, ChannelSummary(channel))
        if delivered:
            summary.delivered += 1
        else:
            summary.failed += 1
    for channel, seconds in to_delivered.items():
        summaries[channel].median_to_delivered_s = statistics.median(seconds)
    return [summaries[c] for c in sorted(summaries)]


def intent_overview(conn: Connection, intent_id: str) -> dict[str, Any] | None:
    """The intent's row (no recipient data), its person's suppressions and inbound messages."""
    row = conn.execute(select(intents).where(intents.c.intent_id == intent_id)).first()
    if row is None:
        return None
    supp = conn.execute(
        select(suppressions)
        .where(suppressions.c.person_id == row.person_id)
        .order_by(suppressions.c.created_at)
    ).all()
    inbound = conn.execute(
        select(
            inbound_messages.c.received_at,
            inbound_messages.c.channel,
            inbound_messages.c.kind,
            inbound_messages.c.keyword,
            inbound_messages.c.possible_opt_out,
            inbound_messages.c.confirmation,
        )
        .where(inbound_messages.c.person_id == row.person_id)
        .order_by(inbound_messages.c.received_at)
    ).all()
    intent = read_intent(row.body)
    fields = (
        "intent_id", "account_id", "person_id", "debt_id", "channel", "jurisdiction", "stage",
        "strategy", "variant", "step", "state", "attempts", "created_at", "published_at",
        "updated_at", "expires_at", "last_error", "provider_ref",
    )  # fmt: skip
    overview: dict[str, Any] = {name: getattr(row, name) for name in fields}
    overview["template"] = f"{intent.template.locale}/{intent.template.name}"
    overview["suppressions"] = [
        {
            "channel": s.channel or "all",
            "debt_id": s.debt_id or "all",
            "reason": s.reason,
            "source": s.source,
            "created_at": s.created_at,
            "removed_at": s.removed_at,
        }
        for s in supp
    ]
    overview["inbound"] = [dict(r._mapping) for r in inbound]
    return overview
