"""A ledger with the bureau step's parts around it: notices, claims, furnishing, one cycle at a
time, through the same calls the worker makes (claim with the gate, Furnisher.send, record)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from dunning.account_facts import AccountFacts
from dunning.bureau.furnisher import Furnisher
from dunning.clock import ManualClock
from dunning.compliance import ComplianceGate
from dunning.intents import Channel, ContactIntent, Recipient, Stage, TemplateRef, make_intent_id
from dunning.ledger import Ledger
from dunning.records import Suppression
from tests.factories import make_intent
from tests.unit.test_compliance_helpers import PACKS

GATE = ComplianceGate(PACKS, jitter_s=0)


def us_account(account: str, role: str = "first_party", **facts: object) -> AccountFacts:
    third = role == "third_party"
    creditor = "Acme Bank" if third else None
    base = AccountFacts(role, "collection" if third else "installment", Decimal("4000.00"),
                        date(2026, 8, 1), original_creditor=creditor)  # fmt: skip
    return dataclasses.replace(base, **facts)  # type: ignore[arg-type]


def bureau_intent(account: str, at: datetime, dpd: int, facts: AccountFacts,
                  jurisdiction: str = "US") -> ContactIntent:  # fmt: skip
    locale = "zh-CN" if jurisdiction == "CN" else "en-US"
    return make_intent(
        Channel.BUREAU, account_id=account, jurisdiction=jurisdiction, stage=Stage.LATE,
        step="late.bureau", template=TemplateRef("credit_bureau_report", locale),
        created_at=at, expires_at=at + timedelta(days=2), days_past_due=dpd, facts=facts,
        intent_id=make_intent_id(account, "late.bureau", at.date()),
        person_id=f"person-{account}", debt_id=account, amount_due=Decimal("1200.40"),
        recipient=Recipient(name="Jane Doe"),
        timezone="Asia/Shanghai" if jurisdiction == "CN" else "America/New_York",
    )  # fmt: skip


class BureauRig:
    def __init__(self, ledger: Ledger, start: datetime) -> None:
        self.ledger = ledger
        self.clock = ManualClock(start)
        self.furnisher = Furnisher(ledger, GATE.decide, self.clock)

    def notice(self, account: str, at: datetime, jurisdiction: str = "US") -> None:
        """A delivered credit-bureau notice email on the account's debt, sent at ``at``."""
        intent = make_intent(
            Channel.EMAIL, account_id=account, jurisdiction=jurisdiction, created_at=at,
            person_id=f"person-{account}", debt_id=account, step="late.bureau_notice",
            intent_id=make_intent_id(account, "late.bureau_notice", at.date()),
            template=TemplateRef("credit_bureau_notice", "en-US"),
        )  # fmt: skip
        self.ledger.record_published([intent], now=at)
        claim = self.ledger.claim(intent, worker="test", now=at, reconcile_after_s=60)
        self.ledger.record_sent(intent.intent_id, claim.attempt, provider_ref=f"<{account}>",
                                status="accepted", detail={}, now=at)  # fmt: skip

    def flag(self, account: str, reason: str, at: datetime) -> None:
        self.ledger.add_suppression(
            Suppression(f"person-{account}", None, reason, "operator", at, debt_id=account)
        )

    async def furnish(self, intent: ContactIntent) -> str:
        """What the worker does with one bureau intent; returns the claim's kind or "sent"."""
        now = intent.created_at + timedelta(minutes=5)
        self.clock.set(now)
        self.ledger.record_published([intent], now=intent.created_at)
        claim = self.ledger.claim(
            intent, worker="test", now=now, reconcile_after_s=60,
            gate=lambda history: GATE.decide(intent, history, now),
        )  # fmt: skip
        if claim.kind != "claimed":
            return claim.kind
        result = await self.furnisher.send(intent, attempt=claim.attempt)
        self.ledger.record_sent(intent.intent_id, claim.attempt, provider_ref=result.provider_ref,
                                status=result.status, detail=result.detail, now=now)  # fmt: skip
        return "sent"


NOV = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
DEC = datetime(2026, 12, 18, 15, 0, tzinfo=UTC)
