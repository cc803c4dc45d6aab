"""Disputes from every way a debtor can send one, and the verification that answers them.

Ways in: a whole-message dispute keyword texted back (the debt of the last text to that number),
an email reply (the debt of the email replied to), the dispute link in a message (signed like
the unsubscribe link), and a dispute portal's signed webhook (the account named). Each opens a
dispute hold on the debt in the ledger (:mod:`dunning.ledger.disputes`): the gate then
suppresses every contact about the debt, and what was queued is cancelled, so a worker that is
running sends nothing more about it.

The rule the hold is recorded under is the pack's ``dispute_rule_id``: US 1006.38 (collection
of the debt stops until the verification is sent; disputed within the validation period, all
collection stops, 1006.38(c)), CN 异议 (collection of the disputed amount stops until it is
reviewed). Whether the dispute came within the validation period is computed from the ledger's
record of when the validation notice was sent (dunning/business_days.py) and kept in the audit.

Rules and sources: docs/legal.md, "Disputes".
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog

from dunning.business_days import validation_period
from dunning.clock import Clock
from dunning.compliance.packs import PackSet
from dunning.errors import ConfigError, DecodeError
from dunning.ledger import Ledger
from dunning.ledger.disputes import DebtRef, DisputeEvent, Verification

__all__ = ["DisputeService", "dispute_token", "verify_dispute_token"]

log = structlog.get_logger(__name__)

DEDUPE_MAX = 128
_VERIFICATIONS = "verifications"


def dispute_token(secret: str, intent_id: str) -> str:
    """HMAC-SHA256 of the intent id for the dispute link, apart from the unsubscribe token."""
    message = f"dispute:{intent_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:32]


def verify_dispute_token(secret: str, intent_id: str, token: str) -> bool:
    if not token.isascii():
        return False
    return hmac.compare_digest(dispute_token(secret, intent_id).encode(), token.encode())


@dataclass(frozen=True, slots=True)
class Opened:
    """What one dispute did: ``fresh`` (False for a copy), the rule, the intents cancelled."""

    fresh: bool
    rule_id: str
    cancelled: tuple[str, ...] = ()
    within_validation_period: bool | None = None


class DisputeService:
    """Opens dispute holds in ``ledger`` and records verifications (see the module docstring)."""

    def __init__(self, ledger: Ledger, clock: Clock, packs: PackSet) -> None:
        self.ledger = ledger
        self.clock = clock
        self.packs = packs

    # --- ways in ------------------------------------------------------------------------------

    async def from_sms(self, params: Mapping[str, str], keyword: str) -> Opened | None:
        """A dispute keyword texted back; None when no debt of ours was texted at that number
        (the caller then stores it for an agent)."""
        sid, phone = params.get("MessageSid", ""), params.get("From", "")
        if not sid or not phone:
            raise DecodeError("inbound message without MessageSid or From")
        debt = await asyncio.to_thread(self.ledger.debt_for_phone, phone)
        if debt is None:
            return None
        return await self._open(
            debt, f"sms:{sid}", "sms_inbound", "sms", body=params.get("Body"),
            from_phone=phone, detail={"keyword": keyword},
        )  # fmt: skip

    async def from_intent(
        self, intent_id: str, *, dedupe_key: str, source: str, channel: str, body: str | None
    ) -> Opened | None:
        """An email reply to, or the dispute link of, ``intent_id``; None for an unknown one."""
        debt = await asyncio.to_thread(self.ledger.debt_for_intent, intent_id)
        if debt is None:
            return None
        return await self._open(debt, dedupe_key, source, channel, body=body)

    async def from_portal(self, payload: Mapping[str, Any]) -> Opened | None:
        """A portal's dispute: ``{"id", "account_id", "amount"?, "text"?}``; None for an
        account the ledger does not know."""
        event_id, account_id = payload.get("id"), payload.get("account_id")
        if not isinstance(event_id, str) or not event_id or len(event_id) > DEDUPE_MAX - 8:
            raise DecodeError("a dispute needs an 'id' (text, at most 120 characters)")
        if not isinstance(account_id, str) or not account_id:
            raise DecodeError("a dispute needs an 'account_id'")
        amount, text = payload.get("amount"), payload.get("text")
        if amount is not None and not isinstance(amount, str):
            raise DecodeError("'amount' is the disputed amount as text, like \"120.00\"")
        if text is not None and not isinstance(text, str):
            raise DecodeError("'text' must be text")
        debt = await asyncio.to_thread(self.ledger.debt_for_account, account_id)
        if debt is None:
            return None
        detail = {} if amount is None else {"disputed_amount": amount}
        return await self._open(
            debt, f"portal:{event_id}", "portal", "portal", body=text, detail=detail
        )

    async def from_operator(self, account_id: str, *, note: str) -> Opened | None:
        """A dispute an agent took by phone or post (``dunning dispute open``)."""
        debt = await asyncio.to_thread(self.ledger.debt_for_account, account_id)
        if debt is None:
            return None
        at = self.clock.now()
        key = f"operator:{account_id}:{at.isoformat()}"[:DEDUPE_MAX]
        return await self._open(debt, key, "operator", "operator", body=note or None)

    async def _open(
        self,
        debt: DebtRef,
        dedupe_key: str,
        source: str,
        channel: str,
        *,
        body: str | None,
        from_phone: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> Opened:
        if len(dedupe_key) > DEDUPE_MAX:
            raise DecodeError(f"message id too long (at most {DEDUPE_MAX} characters)")
        now = self.clock.now()
        rule_id, facts = await asyncio.to_thread(self._rule_and_period, debt)
        event = DisputeEvent(
            dedupe_key=dedupe_key, debt=debt, source=source, channel=channel, received_at=now,
            rule_id=rule_id, body=body, from_phone=from_phone, detail={**facts, **(detail or {})},
        )  # fmt: skip
        fresh, cancelled = await asyncio.to_thread(self.ledger.open_dispute, event)
        within = facts.get("within_validation_period")
        log.info(
            "receipts.dispute_opened", source=source, rule_id=rule_id, duplicate=not fresh,
            cancelled=len(cancelled), within_validation_period=within,
        )  # fmt: skip
        return Opened(
            fresh, rule_id, tuple(cancelled), within if isinstance(within, bool) else None
        )

    def _rule_and_period(self, debt: DebtRef) -> tuple[str, dict[str, Any]]:
        now = self.clock.now()
        pack = self.packs.select(debt.jurisdiction, now)
        if pack is None:
            return f"{debt.jurisdiction}.dispute", {"effect": "no rule pack: the hold stands"}
        rule_id = pack.dispute_rule_id or f"{pack.jurisdiction}.dispute"
        facts: dict[str, Any] = {"pack_version": pack.version}
        if pack.jurisdiction.startswith("CN"):
            facts["effect"] = "collection of the disputed amount stops until it is reviewed"
        else:
            facts["effect"] = "collection of the debt stops until the verification is sent"
        gate = pack.validation
        if gate is None:
            return rule_id, facts
        history = self.ledger.history(debt.person_id, since=now)
        sent_at = history.validation_sent_at(debt.debt_id)
        if sent_at is None:
            return rule_id, facts
        period = validation_period(
            sent_at.date(),
            receipt_business_days=gate.receipt_business_days,
            period_days=gate.period_days,
        )
        # A day of margin: the notice prints an end date computed from its latest send day.
        within = now.date() <= period.ends_on + timedelta(days=1)
        facts.update(
            validation_sent_on=period.sent_on.isoformat(),
            validation_period_ends=period.ends_on.isoformat(),
            within_validation_period=within,
        )
        if within:
            facts["effect"] = "all collection of the debt stops until verification (1006.38(c))"
        return rule_id, facts

    # --- verification -------------------------------------------------------------------------

    async def verify(self, account_id: str, document: Path, outbox: Path) -> Verification:
        """Record the verification of ``account_id``'s dispute: the document goes to the print
        vendor's outbox (``verifications/``) with a manifest holding its SHA-256, the holds on
        the debt are lifted, and the audit names the document. Raises ConfigError for an
        unknown account or an unreadable document."""
        debt = await asyncio.to_thread(self.ledger.debt_for_account, account_id)
        if debt is None:
            raise ConfigError(f"no account {account_id!r} in the ledger")
        try:
            data = await asyncio.to_thread(document.read_bytes)
        except OSError as exc:
            raise ConfigError(f"cannot read the verification {document}: {exc.strerror}") from exc
        digest = hashlib.sha256(data).hexdigest()
        answered = None if debt.intent_id is None else self.ledger.load_intent(debt.intent_id)
        recipient: dict[str, Any] = {}
        if answered is not None:  # the vendor's instruction: the debtor, at the address we used
            address = answered.recipient.postal_address
            recipient = {
                "name": answered.recipient.name,
                "email": answered.recipient.email,
                "postal_address": None
                if address is None
                else [*address.lines, address.city, address.region, address.postal_code,
                      address.country],
            }  # fmt: skip
        placed = await asyncio.to_thread(_place, outbox, debt, document, digest, recipient)
        pack = self.packs.select(debt.jurisdiction, self.clock.now())
        rule_id = (pack.dispute_rule_id if pack else None) or f"{debt.jurisdiction}.dispute"
        detail = {"document": document.name, "sha256": digest, "sent_to": str(placed)}
        return await asyncio.to_thread(
            self.ledger.verify_dispute, debt, rule_id=rule_id, now=self.clock.now(), detail=detail
        )


def _place(
    outbox: Path, debt: DebtRef, document: Path, digest: str, recipient: Mapping[str, Any]
) -> Path:
    """Copy the verification into the outbox, then its manifest (the commit marker)."""
    folder = outbox / _VERIFICATIONS
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{debt.debt_id}-verification-{digest[:12]}"
    target = folder / f"{stem}{document.suffix.lower()}"
    shutil.copyfile(document, target)
    manifest = {
        "kind": "dispute_verification",
        "debt_id": debt.debt_id,
        "person_id": debt.person_id,
        "reply_to_intent": debt.intent_id,
        "file": target.name,
        "sha256": digest,
        "recipient": dict(recipient),
    }
    body = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True)
    (folder / f"{stem}.json").write_text(body + "\n", encoding="utf-8")
    return target
