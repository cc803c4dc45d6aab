"""The webhook's endpoints for disputes and the legal handover (docs/legal.md).

    POST /email/inbound          email replies (HMAC): a dispute keyword opens a dispute
    GET|POST /disputes/link      the dispute link in a message (token in the URL)
    POST /disputes/portal        a dispute portal's disputes (HMAC)
    POST /legal/acknowledgments  a law firm's receipt of a handover bag (HMAC)

Signed JSON is checked as the provider events are (``X-Dunning-Signature`` over the raw body).
"""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from dunning.clock import Clock
from dunning.errors import DecodeError
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.ledger.receipts_inbound import InboundRecord
from dunning.receipts.disputes import DisputeService, verify_dispute_token
from dunning.receipts.events import INTENT_ID_MAX, checked_text
from dunning.receipts.inbound import is_dispute_reply
from dunning.receipts.limits import MAX_JSON_BYTES, RefusedError, read_body
from dunning.receipts.signatures import HMAC_HEADER, verify_body
from dunning.settings import Settings

__all__ = ["LegalEndpoints"]


class LegalEndpoints:
    """Disputes from email, links and portals; the firms' acknowledgments of handovers."""

    def __init__(
        self, settings: Settings, ledger: Ledger, clock: Clock, disputes: DisputeService
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.clock = clock
        self.disputes = disputes

    async def _signed_object(self, request: Request) -> dict[str, object]:
        body = await read_body(request, MAX_JSON_BYTES)
        if not verify_body(self.settings.webhook_secret, body, request.headers.get(HMAC_HEADER)):
            raise RefusedError(403, "invalid signature")
        try:
            payload = json.loads(body)
        except ValueError as exc:
            raise DecodeError(f"body is not JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise DecodeError("expected a JSON object")
        return payload

    async def email_inbound(self, request: Request) -> Response:
        """An email reply, relayed by the provider's inbound parse as signed JSON
        ``{"id", "intent_id", "text"}``: a dispute keyword opens a dispute of that debt."""
        payload = await self._signed_object(request)
        message_id, intent_id = payload.get("id"), payload.get("intent_id")
        text = payload.get("text")
        if not isinstance(message_id, str) or not message_id:
            raise DecodeError("an inbound email needs an 'id'")
        if not isinstance(intent_id, str) or not isinstance(text, str):
            raise DecodeError("an inbound email needs 'intent_id' and 'text' (text)")
        checked_text(intent_id, "intent_id", INTENT_ID_MAX)
        if not is_dispute_reply(text):  # kept for an agent, as a text that is not a keyword
            debt = await asyncio.to_thread(self.ledger.debt_for_intent, intent_id)
            record = InboundRecord(
                dedupe_key=f"email:{message_id}"[:128], channel=Channel.EMAIL, kind="agent",
                received_at=self.clock.now(), intent_id=intent_id, body=text,
                person_id=None if debt is None else debt.person_id,
            )  # fmt: skip
            await asyncio.to_thread(self.ledger.record_inbound, record)
            return JSONResponse({"dispute": False})
        opened = await self.disputes.from_intent(
            intent_id, dedupe_key=f"email:{message_id}"[:128], source="email_inbound",
            channel="email", body=text,
        )  # fmt: skip
        if opened is None:
            raise RefusedError(404, "unknown message")
        return JSONResponse({"dispute": True, "rule_id": opened.rule_id})

    async def dispute_link(self, request: Request) -> Response:
        """The dispute link: GET shows a button (link scanners follow links), POST disputes."""
        intent_id = request.query_params.get("intent_id", "")
        token = request.query_params.get("token", "")
        secret = self.settings.unsubscribe_secret
        if not intent_id or not verify_dispute_token(secret, intent_id, token):
            raise RefusedError(403, "this dispute link is not valid")
        checked_text(intent_id, "intent_id", INTENT_ID_MAX)
        if request.method == "GET":
            return HTMLResponse(
                '<form method="post"><button type="submit">I dispute this debt</button></form>'
            )
        opened = await self.disputes.from_intent(
            intent_id, dedupe_key=f"link:{intent_id}", source="dispute_link", channel="link",
            body=None,
        )  # fmt: skip
        if opened is None:
            raise RefusedError(404, "unknown message")
        return HTMLResponse(
            "<p>Your dispute is recorded. We will stop collecting this debt until we send you "
            "information that shows you owe it.</p>"
        )

    async def dispute_portal(self, request: Request) -> Response:
        payload = await self._signed_object(request)
        opened = await self.disputes.from_portal(payload)
        if opened is None:
            raise RefusedError(404, "unknown account")
        return JSONResponse(
            {"fresh": opened.fresh, "rule_id": opened.rule_id, "cancelled": len(opened.cancelled)}
        )

    async def handover_ack(self, request: Request) -> Response:
        """The firm received a bag: ``{"id", "account_id", "manifest_sha256", "firm_ref"?}``,
        stored once per ``id`` as the handover's receipt."""
        payload = await self._signed_object(request)
        ack_id, account_id = payload.get("id"), payload.get("account_id")
        digest = payload.get("manifest_sha256")
        if not all(isinstance(v, str) and v for v in (ack_id, account_id, digest)):
            raise DecodeError("an acknowledgment needs 'id', 'account_id' and 'manifest_sha256'")
        debt = await asyncio.to_thread(self.ledger.debt_for_account, str(account_id))
        if debt is None:
            raise RefusedError(404, "unknown account")
        firm_ref = payload.get("firm_ref")
        detail = {"account_id": account_id, "manifest_sha256": digest,
                  "firm_ref": firm_ref if isinstance(firm_ref, str) else None}  # fmt: skip
        fresh = await asyncio.to_thread(
            self.ledger.record_handover_ack, dedupe_key=f"handover:{ack_id}"[:128],
            debt_id=debt.debt_id, now=self.clock.now(), detail=detail,
        )  # fmt: skip
        return JSONResponse({"recorded": fresh})
