"""The webhook: a Starlette app that verifies, records, publishes and answers at once.

    POST /twilio/status        SMS status callbacks              -> 200 <Response/>
    POST /twilio/call-status   call progress callbacks           -> 200 <Response/>
    POST /twilio/amd           async answering-machine detection -> 200 TwiML
    POST /twilio/gather        keypad choice (1, 2, 9)           -> 200 TwiML
    POST /twilio/inbound       incoming SMS (STOP, START, ...)   -> 200 <Response/>
    POST /email/events         email provider events (HMAC)      -> 200 JSON
    POST /letters/events       print vendor events (HMAC)        -> 200 JSON
    GET|POST /email/unsubscribe  List-Unsubscribe one-click (token in the URL)
    GET  /healthz

Every Twilio request is checked against ``DUNNING_WEBHOOK_PUBLIC_URL`` + path + raw query over
all posted fields; a bad or missing signature is answered 403 before anything is read or
written. JSON sources sign the raw body (``X-Dunning-Signature``, see docs/receipts.md).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from dunning.broker.base import Publisher
from dunning.channels.email_message import verify_unsubscribe_token
from dunning.channels.sender_config import load_twilio_config
from dunning.channels.templates import TemplateStore
from dunning.channels.voice import voicemail_twiml
from dunning.errors import ChannelError, DecodeError
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.ledger import receipts_store as store
from dunning.receipts.optouts import ConfirmationSender, OptOutService, TwilioConfirmations
from dunning.receipts.service import ProviderEvent, ReceiptService
from dunning.receipts.signatures import (
    HMAC_HEADER,
    FormParams,
    public_url,
    verify_body,
    verify_twilio,
)
from dunning.settings import Settings

__all__ = ["create_app", "decode_events"]

log = structlog.get_logger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
_XML = "text/xml"
#: Field names accepted for an event's provider reference, per source.
_REF_FIELDS = {
    Channel.EMAIL: ("message_id", "provider_ref"),
    Channel.LETTER: ("file", "provider_ref"),
}

TwilioHandler = Callable[[FormParams, str | None], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def decode_events(channel: Channel, payload: Any) -> list[ProviderEvent]:
    """Events from the documented JSON: one event object, or ``{"events": [...]}``.

    Raises DecodeError naming what is missing.
    """
    items = (
        payload.get("events") if isinstance(payload, dict) and "events" in payload else [payload]
    )
    if not isinstance(items, list):
        raise DecodeError("events must be a list", field="events")
    events: list[ProviderEvent] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise DecodeError("an event must be an object", field=f"events[{index}]")
        ref = next((str(item[k]) for k in _REF_FIELDS[channel] if item.get(k)), None)
        status = item.get("event") or item.get("status")
        if ref is None:
            raise DecodeError(f"needs one of {_REF_FIELDS[channel]}", field=f"events[{index}]")
        if not isinstance(status, str) or not status:
            raise DecodeError("needs an event name", field=f"events[{index}].event")
        if channel is Channel.EMAIL and status == "bounced" and item.get("bounce_type") == "soft":
            status = "deferred"  # a soft bounce will be retried by the sending server
        intent_id = item.get("intent_id")
        events.append(
            ProviderEvent(channel, ref, status, str(intent_id) if intent_id else None, item)
        )
    return events


def create_app(
    settings: Settings,
    ledger: Ledger,
    publisher: Publisher | None = None,
    *,
    confirmations: ConfirmationSender | None = None,
) -> Starlette:
    """The webhook app over ``ledger``; receipts are published on ``publisher`` when given.

    ``confirmations`` sends opt-out confirmations (default: the Twilio Messages API configured
    by ``settings``). ``app.state.receipts.drain()`` waits for pending publications. Raises
    ConfigError when ``config/channels.toml`` is unfit.
    """
    hooks = _Webhook(settings, ledger, publisher, confirmations)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await hooks.receipts.drain()
        await hooks.sender.aclose()

    routes = [
        Route("/twilio/status", hooks.twilio(hooks.message_status), methods=["POST"]),
        Route("/twilio/call-status", hooks.twilio(hooks.call_status), methods=["POST"]),
        Route("/twilio/amd", hooks.twilio(hooks.amd), methods=["POST"]),
        Route("/twilio/gather", hooks.twilio(hooks.gather), methods=["POST"]),
        Route("/twilio/inbound", hooks.twilio(hooks.inbound), methods=["POST"]),
        Route("/email/events", hooks.signed_json(Channel.EMAIL), methods=["POST"]),
        Route("/letters/events", hooks.signed_json(Channel.LETTER), methods=["POST"]),
        Route("/email/unsubscribe", hooks.unsubscribe, methods=["GET", "POST"]),
        Route("/healthz", hooks.healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.receipts = hooks.receipts
    app.state.optouts = hooks.optouts
    return app


class _Webhook:
    """The endpoints, sharing settings, the ledger and the two services."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        publisher: Publisher | None,
        confirmations: ConfirmationSender | None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.clock = settings.clock()
        self.config = load_twilio_config(settings.config_dir)
        self.templates = TemplateStore(settings.config_dir / "templates")
        self.sender = confirmations or TwilioConfirmations(settings)
        self.receipts = ReceiptService(ledger, self.clock, publisher)
        self.optouts = OptOutService(
            ledger,
            self.clock,
            config=self.config,
            templates=self.templates,
            confirmations=self.sender,
        )

    def twilio(self, handler: TwilioHandler) -> Endpoint:
        """Wrap ``handler`` with Twilio signature verification (403 before anything else)."""
        settings = self.settings

        async def endpoint(request: Request) -> Response:
            body = await request.body()
            params = FormParams(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            path = request.scope["path"]
            root = request.scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            query = request.scope["query_string"].decode("latin-1")
            url = public_url(settings.webhook_public_url, path, query)
            signature = request.headers.get("X-Twilio-Signature")
            algorithm = request.headers.get("X-Twilio-Webhooks-Signature-Settings")
            if not verify_twilio(settings.twilio_auth_token, url, params, signature, algorithm):
                log.warning("receipts.bad_signature", path=path, signed=signature is not None)
                return Response("invalid signature", status_code=403)
            try:
                return await handler(params, request.query_params.get("intent_id"))
            except DecodeError as exc:
                return Response(str(exc), status_code=400)

        return endpoint

    def signed_json(self, channel: Channel) -> Endpoint:
        """An endpoint for HMAC-signed JSON events of ``channel``."""

        async def endpoint(request: Request) -> Response:
            body = await request.body()
            secret = self.settings.webhook_secret
            if not verify_body(secret, body, request.headers.get(HMAC_HEADER)):
                log.warning("receipts.bad_signature", path=request.url.path)
                return JSONResponse({"error": "invalid signature"}, status_code=403)
            try:
                events = decode_events(channel, json.loads(body))
            except (ValueError, DecodeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            outcomes = [await self.receipts.provider_event(event) for event in events]
            return JSONResponse({"received": len(events), "outcomes": [o.kind for o in outcomes]})

        return endpoint

    async def message_status(self, params: FormParams, intent_id: str | None) -> Response:
        await self.receipts.message_status(params.as_dict(), intent_id)
        return Response(EMPTY_TWIML, media_type=_XML)

    async def call_status(self, params: FormParams, intent_id: str | None) -> Response:
        await self.receipts.call_status(params.as_dict(), intent_id)
        return Response(EMPTY_TWIML, media_type=_XML)

    async def amd(self, params: FormParams, intent_id: str | None) -> Response:
        """Record the detection; for a machine, answer with the limited-content voicemail."""
        answered_by = await self.receipts.amd_result(params.as_dict(), intent_id)
        if intent_id is not None and answered_by and answered_by.startswith("machine_end"):
            intent = await asyncio.to_thread(store.load_intent, self.ledger.engine, intent_id)
            if intent is not None:
                twiml = voicemail_twiml(intent, config=self.config, templates=self.templates)
                return Response(twiml, media_type=_XML)
        return Response(EMPTY_TWIML, media_type=_XML)

    async def gather(self, params: FormParams, intent_id: str | None) -> Response:
        return Response(await self.optouts.gather(params.as_dict(), intent_id), media_type=_XML)

    async def inbound(self, params: FormParams, _: str | None) -> Response:
        try:
            await self.optouts.inbound_sms(params.as_dict())
        except ChannelError as exc:
            # The opt-out is recorded; the confirmation failed and a retry will send it.
            log.warning("receipts.confirmation_failed", error=type(exc).__name__)
            return Response("confirmation not sent", status_code=503)
        return Response(EMPTY_TWIML, media_type=_XML)

    async def unsubscribe(self, request: Request) -> Response:
        """RFC 8058 one-click: POST unsubscribes; GET only shows the button (link scanners)."""
        intent_id = request.query_params.get("intent_id", "")
        token = request.query_params.get("token", "")
        secret = self.settings.webhook_secret
        if not intent_id or not verify_unsubscribe_token(secret, intent_id, token):
            return HTMLResponse("<p>This unsubscribe link is not valid.</p>", status_code=403)
        if request.method == "GET":
            return HTMLResponse(
                '<form method="post"><button type="submit">Unsubscribe</button></form>'
            )
        if not await self.optouts.email_unsubscribe(intent_id):
            return HTMLResponse("<p>Unknown message.</p>", status_code=404)
        return HTMLResponse("<p>You are unsubscribed from these emails.</p>")

    async def healthz(self, _: Request) -> Response:
        return JSONResponse({"status": "ok", "at": _iso(self.clock.now())})


def _iso(value: datetime) -> str:
    return value.isoformat()
