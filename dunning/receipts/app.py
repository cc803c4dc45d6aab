"""The webhook: a Starlette app that verifies, records and answers at once; receipts reach the
``dunning.receipts`` feed from the ledger (:mod:`dunning.receipts.feed`).

    POST /twilio/status        SMS status callbacks              -> 200 <Response/>
    POST /twilio/call-status   call progress callbacks           -> 200 <Response/>
    POST /twilio/amd           async answering-machine detection -> 200 TwiML
    POST /twilio/gather        keypad choice (1, 2, 3, 9)        -> 200 TwiML
    POST /twilio/identity      right-party digits (or none)      -> 200 TwiML
    POST /twilio/promise       promised day keyed as MMDD        -> 200 TwiML
    POST /twilio/inbound       incoming SMS (STOP, START, ...)   -> 200 <Response/>
    POST /email/events         email provider events (HMAC)      -> 200 JSON
    POST /letters/events       print vendor events (HMAC)        -> 200 JSON
    POST /visits/outcomes      field-service visit reports (HMAC) -> 200 JSON (incidents)
    GET|POST /email/unsubscribe  List-Unsubscribe one-click (token in the URL)
    POST /email/inbound, /disputes/portal, /legal/acknowledgments, GET|POST /disputes/link:
                               disputes and handovers (dunning/receipts/legal_routes.py)
    GET  /healthz
    GET  /metrics              Prometheus counts (dunning.receipts.metrics)

Every Twilio request is checked against ``DUNNING_WEBHOOK_PUBLIC_URL`` + path + raw query over
all posted fields; a bad or missing signature is answered 403 before anything is stored. JSON
sources sign the raw body (``X-Dunning-Signature``, see docs/receipts.md). Bodies are read with
caps before they are verified (:mod:`dunning.receipts.limits`).

Every refusal is a JSON ``{"error": ...}`` with its 4xx, logged (masked) as
``receipts.refused``; a ledger fault is 503 (the provider retries), anything unforeseen a JSON
500 logged without its data.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import structlog
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from dunning.broker.base import Publisher
from dunning.channels.email_message import verify_unsubscribe_token
from dunning.channels.twilio.voice import voicemail_twiml
from dunning.channels.twilio.voice_ivr import PROMISE_KEY, promise_prompt_twiml
from dunning.channels_toml import load_twilio_config
from dunning.compliance.packs import load_packs
from dunning.errors import ChannelError, ConfigError, DecodeError, LedgerError
from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.receipts.disputes import DisputeService
from dunning.receipts.events import INTENT_ID_MAX, checked_text, parse_events
from dunning.receipts.feed import ReceiptFeed
from dunning.receipts.inbound import classify_inbound
from dunning.receipts.ivr import IvrService
from dunning.receipts.legal_routes import LegalEndpoints
from dunning.receipts.limits import (
    MAX_FORM_BYTES,
    MAX_JSON_BYTES,
    RefusedError,
    error_response,
    parse_form,
    read_body,
)
from dunning.receipts.metrics import attach_metrics
from dunning.receipts.optouts import ConfirmationSender, OptOutService, TwilioConfirmations
from dunning.receipts.service import ReceiptService
from dunning.receipts.signatures import (
    HMAC_HEADER,
    FormParams,
    public_url,
    verify_body,
    verify_twilio,
)
from dunning.receipts.visits import VisitOutcomes
from dunning.settings import Settings
from dunning.templates import TemplateStore

__all__ = ["check_webhook_settings", "create_app"]

log = structlog.get_logger(__name__)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response />'
_XML = "text/xml"
#: Sent with Twilio's shared-key signatures, which this webhook does not take.
SHARED_KEY_HEADER = "X-Twilio-Webhooks-Signature-Settings"

TwilioHandler = Callable[[FormParams, str | None], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


def create_app(
    settings: Settings,
    ledger: Ledger,
    publisher: Publisher | None = None,
    *,
    confirmations: ConfirmationSender | None = None,
    feed: ReceiptFeed | None = None,
) -> Starlette:
    """The webhook app over ``ledger``; stored receipts are owed to ``feed``, which publishes
    them from the ledger, or, without one, to a feed over ``publisher`` (closed by the caller).
    With neither, receipts are only stored.

    ``confirmations`` sends opt-out confirmations (default: the Twilio Messages API configured
    by ``settings``). ``app.state.receipts.drain()`` waits until the feed is published. Raises
    ConfigError when ``config/channels.toml`` is unfit, or outside the sandbox when a secret or
    the public URL is not set (:func:`check_webhook_settings`).
    """
    check_webhook_settings(settings)
    hooks = _Webhook(settings, ledger, publisher, confirmations, feed)
    legal = LegalEndpoints(settings, ledger, hooks.clock, hooks.disputes)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await hooks.receipts.start()  # publishes what a previous run left unpublished
        yield
        await hooks.receipts.stop()
        await hooks.sender.aclose()

    visits = _guarded(VisitOutcomes(settings, ledger, hooks.clock))
    routes = [
        Route("/twilio/status", hooks.twilio(hooks.message_status), methods=["POST"]),
        Route("/twilio/call-status", hooks.twilio(hooks.call_status), methods=["POST"]),
        Route("/twilio/amd", hooks.twilio(hooks.amd), methods=["POST"]),
        Route("/twilio/gather", hooks.twilio(hooks.gather), methods=["POST"]),
        Route("/twilio/identity", hooks.twilio(hooks.identity), methods=["POST"]),
        Route("/twilio/promise", hooks.twilio(hooks.promise), methods=["POST"]),
        Route("/twilio/inbound", hooks.twilio(hooks.inbound), methods=["POST"]),
        Route("/email/events", hooks.signed_json(Channel.EMAIL), methods=["POST"]),
        Route("/letters/events", hooks.signed_json(Channel.LETTER), methods=["POST"]),
        Route("/visits/outcomes", visits, methods=["POST"]),
        Route(
            "/email/unsubscribe",
            _guarded(hooks.unsubscribe, pages=True),
            methods=["GET", "POST"],
        ),
        Route("/email/inbound", _guarded(legal.email_inbound), methods=["POST"]),
        Route("/disputes/link", _guarded(legal.dispute_link, pages=True), methods=["GET", "POST"]),
        Route("/disputes/portal", _guarded(legal.dispute_portal), methods=["POST"]),
        Route("/legal/acknowledgments", _guarded(legal.handover_ack), methods=["POST"]),
        Route("/healthz", hooks.healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.receipts = hooks.receipts
    app.state.optouts = hooks.optouts
    attach_metrics(app)
    app.state.disputes = hooks.disputes
    return app


def check_webhook_settings(settings: Settings) -> None:
    """Raise ConfigError naming every unset secret or URL, unless ``settings.sandbox``."""
    problems = [] if settings.sandbox else settings.webhook_problems()
    if problems:
        raise ConfigError(
            "the webhook will not run on the sandbox's public values: "
            + "; ".join(problems)
            + " (local trials with the stand-ins: DUNNING_SANDBOX=true or --sandbox)"
        )


class _Webhook:
    """The endpoints, sharing settings, the ledger and the two services."""

    def __init__(
        self,
        settings: Settings,
        ledger: Ledger,
        publisher: Publisher | None,
        confirmations: ConfirmationSender | None,
        feed: ReceiptFeed | None = None,
    ) -> None:
        self.settings = settings
        self.ledger = ledger
        self.clock = settings.clock()
        self.config = load_twilio_config(settings.config_dir)
        self.templates = TemplateStore(settings.config_dir / "templates")
        self.sender = confirmations or TwilioConfirmations(settings)
        self.receipts = ReceiptService(ledger, self.clock, publisher, feed=feed)
        self.optouts = OptOutService(
            ledger,
            self.clock,
            config=self.config,
            templates=self.templates,
            confirmations=self.sender,
        )
        self.ivr = IvrService(
            ledger, self.clock, config=self.config, templates=self.templates,
            webhook_public_url=settings.webhook_public_url,
        )  # fmt: skip
        packs = load_packs(settings.config_dir / "compliance.toml")
        self.disputes = DisputeService(ledger, self.clock, packs)

    def twilio(self, handler: TwilioHandler) -> Endpoint:
        """Wrap ``handler`` with Twilio signature verification (403 before anything is stored)."""
        settings = self.settings

        async def endpoint(request: Request) -> Response:
            if SHARED_KEY_HEADER in request.headers:
                raise RefusedError(
                    403,
                    "shared-key signatures are not supported: "
                    "sign webhooks with the account auth token",
                )
            params = FormParams(parse_form(await read_body(request, MAX_FORM_BYTES)))
            path = request.scope["path"]
            root = request.scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            query = request.scope["query_string"].decode("latin-1")
            url = public_url(settings.webhook_public_url, path, query)
            signature = request.headers.get("X-Twilio-Signature")
            if not verify_twilio(settings.twilio_auth_token, url, params, signature):
                raise RefusedError(403, "invalid signature")
            intent_id = request.query_params.get("intent_id")
            if intent_id is not None:
                checked_text(intent_id, "intent_id", INTENT_ID_MAX)
            return await handler(params, intent_id)

        return _guarded(endpoint)

    def signed_json(self, channel: Channel) -> Endpoint:
        """An endpoint for HMAC-signed JSON events of ``channel``: a batch is stored whole."""

        async def endpoint(request: Request) -> Response:
            body = await read_body(request, MAX_JSON_BYTES)
            secret = self.settings.webhook_secret
            if not verify_body(secret, body, request.headers.get(HMAC_HEADER)):
                raise RefusedError(403, "invalid signature")
            events = await asyncio.to_thread(parse_events, channel, body)
            outcomes = await self.receipts.provider_events(events)
            return JSONResponse({"received": len(events), "outcomes": [o.kind for o in outcomes]})

        return _guarded(endpoint)

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
            intent = await asyncio.to_thread(self.ledger.load_intent, intent_id)
            if intent is not None:
                twiml = voicemail_twiml(intent, config=self.config, templates=self.templates)
                return Response(twiml, media_type=_XML)
        return Response(EMPTY_TWIML, media_type=_XML)

    async def gather(self, params: FormParams, intent_id: str | None) -> Response:
        if params.as_dict().get("Digits", "").strip() == PROMISE_KEY and intent_id is not None:
            intent = await asyncio.to_thread(self.ledger.load_intent, intent_id)
            if intent is not None:
                url = self.settings.webhook_public_url
                twiml = promise_prompt_twiml(intent, webhook_public_url=url)
                return Response(twiml, media_type=_XML)
        return Response(await self.optouts.gather(params.as_dict(), intent_id), media_type=_XML)

    async def identity(self, params: FormParams, intent_id: str | None) -> Response:
        return Response(await self.ivr.identity(params.as_dict(), intent_id), media_type=_XML)

    async def promise(self, params: FormParams, intent_id: str | None) -> Response:
        twiml = await self.ivr.keypad_promise(params.as_dict(), intent_id)
        return Response(twiml, media_type=_XML)

    async def inbound(self, params: FormParams, _: str | None) -> Response:
        form = params.as_dict()
        decision = classify_inbound(form.get("Body", ""))
        keyword = decision.keyword if decision.kind == "dispute" else None
        if keyword is not None and await self.disputes.from_sms(form, keyword) is not None:
            return Response(EMPTY_TWIML, media_type=_XML)
        try:
            decision = await self.optouts.inbound_sms(params.as_dict())
            if decision.kind == "agent":  # a sentence may be a promise with its day
                await self.ivr.sms_promise(params.as_dict())
        except ChannelError as exc:
            # The opt-out is recorded; the confirmation failed and a retry will send it.
            log.warning("receipts.confirmation_failed", error=type(exc).__name__)
            return error_response(503, "opt-out recorded, confirmation not sent: retry")
        return Response(EMPTY_TWIML, media_type=_XML)

    async def unsubscribe(self, request: Request) -> Response:
        """RFC 8058 one-click: POST unsubscribes; GET only shows the button (link scanners).

        People get HTML pages; a refusal is JSON unless the client asked for HTML.
        """
        intent_id = request.query_params.get("intent_id", "")
        token = request.query_params.get("token", "")
        secret = self.settings.unsubscribe_secret
        if not intent_id or not verify_unsubscribe_token(secret, intent_id, token):
            raise RefusedError(403, "this unsubscribe link is not valid")
        checked_text(intent_id, "intent_id", INTENT_ID_MAX)
        if request.method == "GET":
            return HTMLResponse(
                '<form method="post"><button type="submit">Unsubscribe</button></form>'
            )
        if not await self.optouts.email_unsubscribe(intent_id):
            raise RefusedError(404, "unknown message")
        return HTMLResponse("<p>You are unsubscribed from these emails.</p>")

    async def healthz(self, _: Request) -> Response:
        return JSONResponse({"status": "ok", "at": _iso(self.clock.now())})


def _iso(value: datetime) -> str:
    return value.isoformat()


def _guarded(endpoint: Endpoint, *, pages: bool = False) -> Endpoint:
    """Every refusal as its status with a JSON error body, logged through the masked logger.

    ``pages``: a browser (``Accept: text/html``) is shown the refusal as a page instead.
    """

    async def guarded(request: Request) -> Response:
        path = request.url.path
        try:
            return await endpoint(request)
        except RefusedError as exc:
            status, message = exc.status, exc.message
        except DecodeError as exc:
            status, message = 400, str(exc)
        except ClientDisconnect:
            log.info("receipts.client_gone", path=path)  # nobody is left to answer
            return error_response(400, "client disconnected before the body was read")
        except LedgerError as exc:
            log.warning("receipts.ledger_unavailable", path=path, error=str(exc))
            return error_response(503, "ledger unavailable, retry later")
        except Exception:  # answered and logged (masked), never a plain-text traceback
            log.exception("receipts.unexpected_error", path=path)
            return error_response(500, "internal error")
        log.warning("receipts.refused", path=path, status=status, reason=message)
        if pages and "text/html" in request.headers.get("accept", ""):
            return HTMLResponse(f"<p>{html.escape(message)}</p>", status_code=status)
        return error_response(status, message)

    return guarded
