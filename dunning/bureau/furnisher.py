"""The bureau step's channel adapter: writes the account's snapshot instead of calling a provider.

The worker claims a bureau intent with the compliance gate as for any channel (the gate's
bureau rules: dunning/compliance/furnishing.py), then calls :meth:`Furnisher.send`. The send
asks the same gate again, in its own read of the person's history, *how* the account is to be
reported (compliance condition XB, a notice still owed): a dispute or a bankruptcy recorded
between the claim and the write is therefore never missed, and a verdict that turned into a
refusal stops the write (the intent is dead-lettered with the rule id). The snapshot is
written to ``bureau_records``; writing it twice in one cycle replaces it, so a redelivered
intent changes nothing. A US first-party record furnished before its notice (FCRA 623(a)(7))
queues the notice email in the ledger, for the reconcile sweep to publish.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog

from dunning.bureau.records import build_record, cycle_of, record_from_row
from dunning.channels.base import SendResult
from dunning.clock import Clock
from dunning.errors import PermanentChannelError
from dunning.intents import Channel, ContactIntent, Stage, TemplateRef, make_intent_id
from dunning.records import ContactHistory, GateDecision

__all__ = ["BureauLedger", "Furnisher"]

log = structlog.get_logger(__name__)

#: The notice queued when a first-party record goes ahead of it (an email template).
NOTICE_TEMPLATE = "credit_bureau_notice"
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

    def record_published(self, intents_: Sequence[ContactIntent], *, now: datetime) -> set[str]: ...


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
        if record.notice_due_by is not None:
            self._schedule_notice(intent, record.notice_due_by, now)
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

    def _schedule_notice(self, intent: ContactIntent, due_by: datetime, now: datetime) -> None:
        """Queue the notice a first-party record was furnished ahead of (FCRA 623(a)(7)).

        It is recorded in the ledger unpublished: the reconcile sweep of any worker publishes
        it (docs/bureau.md). Its id is fixed per account and day, so a redelivery adds none.
        """
        if intent.recipient.email is None:
            log.warning("bureau.notice_not_scheduled", reason="no email address")
            return
        step = f"{intent.step}.notice_owed"
        notice = dataclasses.replace(
            intent,
            intent_id=make_intent_id(intent.account_id, step, intent.created_at.date()),
            stage=Stage.LATE,
            channel=Channel.EMAIL,
            step=step,
            template=TemplateRef(NOTICE_TEMPLATE, intent.template.locale),
            created_at=now,
            expires_at=due_by,
            not_before=None,
            trace_id=uuid.uuid4().hex,
            facts=None,
        )
        if self.ledger.record_published([notice], now=now):
            log.info("bureau.notice_scheduled", notice_intent_id=notice.intent_id)

    async def aclose(self) -> None:
        return None
