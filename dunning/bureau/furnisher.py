"""The bureau step's channel adapter: writes the account's snapshot instead of calling a provider.

The worker claims a bureau intent with the compliance gate as for any channel (the gate's
bureau rules: dunning/compliance/furnishing.py), then calls :meth:`Furnisher.send`. The send
asks the same gate again, in its own read of the person's history, *how* the account is to be
reported (compliance condition XB, a notice still owed): a dispute or a bankruptcy recorded
between the claim and the write is therefore never missed, and a verdict that turned into a
refusal stops the write (the intent is dead-lettered with the rule id). The snapshot is
written to ``bureau_records``; writing it twice in one cycle replaces it, so a redelivered
intent changes nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from dunning.bureau.records import build_record, cycle_of, record_from_row
from dunning.channels.base import SendResult
from dunning.clock import Clock
from dunning.errors import PermanentChannelError
from dunning.intents import Channel, ContactIntent
from dunning.records import ContactHistory, GateDecision

__all__ = ["BureauLedger", "Furnisher"]

log = structlog.get_logger(__name__)

#: How far back the write-time check reads the person's contacts (the notice may be old).
HISTORY_DAYS = 400

Gate = Callable[[ContactIntent, ContactHistory, datetime], GateDecision]


class BureauLedger(Protocol):
    """The part of :class:`dunning.ledger.Ledger` the furnisher uses (sync; run in a thread)."""

    def history(self, person_id: str, *, since: datetime) -> ContactHistory: ...

    def bureau_history(
        self, account_id: str, *, before: str, limit: int = 24
    ) -> list[dict[str, Any]]: ...

    def write_bureau_record(self, row: dict[str, Any]) -> None: ...


class Furnisher:
    """A :class:`~dunning.channels.base.ChannelAdapter` for :attr:`Channel.BUREAU`."""

    channel = Channel.BUREAU

    def __init__(self, ledger: BureauLedger, gate: Gate, clock: Clock) -> None:
        self.ledger = ledger
        self.gate = gate
        self.clock = clock

    async def send(self, intent: ContactIntent, *, attempt: int) -> SendResult:
        return await asyncio.to_thread(self._furnish, intent)

    def _furnish(self, intent: ContactIntent) -> SendResult:
        if intent.facts is None:
            raise PermanentChannelError("a bureau intent without the account's facts")
        now = self.clock.now()
        history = self.ledger.history(intent.person_id, since=now - timedelta(days=HISTORY_DAYS))
        verdict = self.gate(intent, history, now)
        if verdict.action != "allow":
            raise PermanentChannelError(
                f"refused at write time: {verdict.reason}", provider_code=verdict.rule_id
            )
        cycle = cycle_of(intent.created_at.astimezone(intent.zone).date())
        earlier = [
            record_from_row(row)
            for row in self.ledger.bureau_history(intent.account_id, before=cycle, limit=25)
        ]
        due = verdict.inputs.get("notice_due_by")
        record = build_record(
            intent,
            earlier,
            compliance_condition=verdict.inputs.get("compliance_condition", ""),
            notice_due_by=None if not due else datetime.fromisoformat(due),
            furnished_at=now,
        )
        self.ledger.write_bureau_record(record.to_row())
        log.info(
            "bureau.furnished",
            cycle=record.cycle,
            status_code=record.status_code,
            compliance_condition=record.compliance_condition,
            rule_id=verdict.rule_id,
        )
        return SendResult(
            provider_ref=f"bureau:{intent.account_id}:{record.cycle}",
            status="furnished",
            detail={"cycle": record.cycle, "status_code": record.status_code},
        )

    async def aclose(self) -> None:
        return None
