"""Sets of intent states that several of the ledger's statements share, each defined once.

Tuples, not sets: they are spelled into SQL (``IN (...)``), which should read the same in
every process.
"""

from __future__ import annotations

from dunning.records import IntentState

__all__ = ["AFTER_SENT", "ALREADY_SENT", "WAITING"]

#: A receipt moved the intent past ``sent``: recording the send must never step it back.
AFTER_SENT = (IntentState.DELIVERED, IntentState.FAILED, IntentState.UNDELIVERED)
#: The provider accepted the intent: it is never sent again (nor replayed, nor re-issued).
ALREADY_SENT = (IntentState.SENT, *AFTER_SENT)
#: Not claimed yet (queued, or deferred to a later window): it may be moved without an attempt.
WAITING = (IntentState.QUEUED, IntentState.DEFERRED)
