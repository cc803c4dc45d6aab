"""Ranked receipt statuses per channel: a receipt only ever moves an intent forward.

Each channel's statuses carry a rank; the ledger applies a receipt only when it outranks every
receipt applied before for the same intent, so a late ``sent`` never overwrites ``delivered``
and a duplicate changes nothing. Final statuses share the top rank (``FINAL_RANK``): the first
final receipt wins and a later, contradictory one is stored but not applied. Two exceptions are
deliberate: an email ``complained`` (after delivery: the complaint proves the delivery) and a
letter ``returned`` (after ``mailed``: the post brought it back) outrank the final status they
follow, because they arrive after it in the real world and change what happened.

An unknown status ranks 0: it is stored for the record and never moves an intent.
"""

from __future__ import annotations

from collections.abc import Mapping

from dunning.intents import Channel

__all__ = [
    "FINAL_RANK",
    "RANKS",
    "is_final",
    "normalise",
    "rank",
]

FINAL_RANK = 100

RANKS: Mapping[Channel, Mapping[str, int]] = {
    Channel.SMS: {
        "accepted": 5,
        "scheduled": 5,
        "queued": 10,
        "sending": 15,
        "sent": 20,
        "delivered": FINAL_RANK,
        "read": FINAL_RANK,
        "undelivered": FINAL_RANK,
        "failed": FINAL_RANK,
        "canceled": FINAL_RANK,
    },
    Channel.VOICE: {
        "queued": 5,
        "initiated": 10,
        "ringing": 20,
        "in-progress": 30,
        "completed": FINAL_RANK,
        "busy": FINAL_RANK,
        "no-answer": FINAL_RANK,
        "failed": FINAL_RANK,
        "canceled": FINAL_RANK,
    },
    Channel.EMAIL: {
        "accepted": 10,
        "deferred": 15,
        "delivered": FINAL_RANK,
        "bounced": FINAL_RANK,
        "complained": FINAL_RANK + 10,
    },
    Channel.LETTER: {
        "rendered": 10,
        "dispatched": 20,
        "printed": 30,
        "mailed": FINAL_RANK,
        "returned": FINAL_RANK + 10,
    },
    # A field task's progress (docs/visits.md): written by dunning, not by a provider.
    Channel.VISIT: {
        "waiting": 5,
        "assigned": 10,
        "visited": FINAL_RANK,
        "expired": FINAL_RANK,
    },
}

#: Provider spellings folded onto ours before ranking.
_ALIASES = {
    "answered": "in-progress",
    "in_progress": "in-progress",
    "no_answer": "no-answer",
    "cancelled": "canceled",
    "bounce": "bounced",
    "complaint": "complained",
    "delivery": "delivered",
}


def normalise(status: str) -> str:
    """Lower-case, trimmed, with provider aliases (``answered`` -> ``in-progress``) folded."""
    folded = status.strip().lower()
    return _ALIASES.get(folded, folded)


def rank(channel: Channel, status: str) -> int:
    """The rank of ``status`` on ``channel``; 0 for a status this table does not know."""
    return RANKS[channel].get(normalise(status), 0)


def is_final(channel: Channel, status: str) -> bool:
    """True for a status after which no further receipt is expected (the sweep's test)."""
    return rank(channel, status) >= FINAL_RANK
