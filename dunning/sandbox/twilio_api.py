"""A Twilio-compatible REST API on loopback: Messages and Calls, create and fetch.

Basic auth with the account SID and token; form fields validated against Twilio's OpenAPI
description (:mod:`dunning.sandbox.twilio_spec`); Twilio-shaped error and resource JSON that the
twilio SDK parses; unique ``SM``/``CA`` SIDs; then signed status callbacks (SMS sent ->
delivered; calls initiated -> ringing -> answered -> completed, plus the async AMD callback).
Failures, throttling, latency and lost callbacks are scripted by :class:`StandInBehaviour`.

Every accepted create is kept in :attr:`TwilioStandIn.requests` (and ``GET /_sandbox/requests``)
with the ``intent_id`` of its StatusCallback, so drills can count creates per intent.

Run it alone with ``python -m dunning.sandbox.twilio_api --port 8099`` or ``dunning sandbox``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import socket
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import date
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog
from aiohttp import web

from dunning.channels.segments import count_segments
from dunning.clock import Clock, SystemClock
from dunning.sandbox.twilio_behaviour import FAILED_AT_CREATE, StandInBehaviour
from dunning.sandbox.twilio_callbacks import CallbackSender, call_events, rfc2822, sleep_ms
from dunning.sandbox.twilio_gather import Keypad
from dunning.sandbox.twilio_spec import CALLS_PATH, MESSAGES_PATH, response_fields, validate_create

__all__ = ["CreateRecord", "StandInBehaviour", "TwilioStandIn"]

log = structlog.get_logger(__name__)
API = "/2010-04-01/Accounts/{AccountSid}"


@dataclass(frozen=True, slots=True)
class CreateRecord:
    """One accepted create request, as the stand-in received it."""

    kind: str  # "message" or "call"
    sid: str
    intent_id: str | None
    form: dict[str, list[str]]


def _error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status, headers=headers)


def _intent_id(callback_url: str | None) -> str | None:
    if not callback_url:
        return None
    values = parse_qs(urlsplit(callback_url).query).get("intent_id")
    return values[0] if values else None


class TwilioStandIn:
    """Async context manager serving the stand-in; ``base_url`` is set once entered."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        behaviour: StandInBehaviour | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.host = host
        self.port = port
        self.behaviour = behaviour or StandInBehaviour()
        # Dates in resources and callbacks, and the DateSent filter, follow this clock, so a
        # sandbox started with DUNNING_NOW agrees with the workers about the day a message went.
        self.clock = clock or SystemClock()
        self.requests: list[CreateRecord] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, dict[str, Any]] = {}
        self.callbacks = CallbackSender(auth_token, self.behaviour)
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = asyncio.Event()
        self.keypad = Keypad(self)  # <Gather>: digits pressed on calls (twilio_gather.py)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def creates_per_intent(self) -> Counter[str]:
        """How many creates were accepted per intent id (a count above 1 is a duplicate)."""
        return Counter(r.intent_id for r in self.requests if r.intent_id is not None)

    async def wait_idle(self, timeout_s: float = 10.0) -> None:
        """Wait until every scheduled callback was posted (or dropped); raises TimeoutError."""
        async with asyncio.timeout(timeout_s):
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- lifecycle ------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(f"{API}/Messages.json", self._create_message)
        app.router.add_get(f"{API}/Messages/{{Sid}}.json", self._fetch)
        app.router.add_get(f"{API}/Messages.json", self._list_messages)
        app.router.add_post(f"{API}/Calls.json", self._create_call)
        app.router.add_get(f"{API}/Calls/{{Sid}}.json", self._fetch)
        app.router.add_post("/_sandbox/script", self._script)
        app.router.add_get("/_sandbox/script", self._script)
        app.router.add_get("/_sandbox/requests", self._requests)
        self.keypad.add_routes(app)
        return app

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit TCP_NODELAY: keep-alive requests otherwise stall ~40 ms
        # (Nagle against delayed ACK).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self.port))
        sock.listen(512)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        log.info("sandbox.twilio_started", base_url=self.base_url)

    async def _delay(self, delay_ms: int) -> None:
        """Scripted latency that ends early when the stand-in stops (fast shutdown)."""
        if delay_ms > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay_ms / 1000)

    async def stop(self) -> None:
        self._closing.set()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.callbacks.aclose()

    async def __aenter__(self) -> TwilioStandIn:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- request handling -----------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            login, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return (
            secrets.compare_digest(login.encode(), self.account_sid.encode())
            and secrets.compare_digest(password.encode(), self.auth_token.encode())
            and request.match_info.get("AccountSid") == self.account_sid
        )

    async def _gate(self, request: web.Request) -> web.Response | None:
        """Auth, scripted latency and scripted throttling/5xx; None when the request goes on."""
        if not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        await self._delay(self.behaviour.response_delay_ms)
        decision = self.behaviour.decide()
        if decision == "429":
            headers = {"Retry-After": str(self.behaviour.retry_after_s)}
            return _error(429, 20429, "Too Many Requests", headers)
        if decision == "500":
            return _error(500, 20500, "Internal Server Error")
        return None

    async def _form(self, request: web.Request) -> dict[str, list[str]]:
        text = await request.text()
        return parse_qs(text, keep_blank_values=True)

    def _resource(self, kind: str, sid: str, fields: dict[str, Any]) -> dict[str, Any]:
        folder = "Messages" if kind == "message" else "Calls"
        schema = "api.v2010.account.message" if kind == "message" else "api.v2010.account.call"
        resource: dict[str, Any] = dict.fromkeys(response_fields(schema))
        now = rfc2822(self.clock)
        resource.update(
            sid=sid,
            account_sid=self.account_sid,
            api_version="2010-04-01",
            date_created=now,
            date_updated=now,
            direction="outbound-api",
            uri=f"/2010-04-01/Accounts/{self.account_sid}/{folder}/{sid}.json",
            subresource_uris={},
        )
        resource.update(fields)
        return resource

    def _accept(self, kind: str, form: dict[str, list[str]]) -> str:
        prefix = "SM" if kind == "message" else "CA"
        sid = prefix + secrets.token_hex(16)
        callback = form.get("StatusCallback", [None])[0]
        self.requests.append(CreateRecord(kind, sid, _intent_id(callback), form))
        return sid

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _create_message(self, request: web.Request) -> web.Response:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        form = await self._form(request)
        violation = validate_create(MESSAGES_PATH, form)
        if violation is not None:
            return _error(400, violation.code, violation.message)
        to = form["To"][0]
        code = self.behaviour.failure_numbers.get(to)
        if code is not None:
            return _error(400, code, f"The 'To' number {to} is not valid for this request.")
        sid = self._accept("message", form)
        body = form.get("Body", [""])[0]
        status, error_code = self.behaviour.create_statuses.get(to, ("queued", None))
        resource = self._resource(
            "message",
            sid,
            {
                "to": to,
                "from": form.get("From", [None])[0],
                "messaging_service_sid": form.get("MessagingServiceSid", [None])[0],
                "body": body,
                "status": status,
                "error_code": error_code,
                "error_message": None if error_code is None else f"scripted error {error_code}",
                "num_segments": str(count_segments(body).segments),
                "num_media": str(len(form.get("MediaUrl", []))),
                "price_unit": "USD",
            },
        )
        self.messages[sid] = resource
        self._spawn(self._message_lifecycle(sid, form))
        return web.json_response(resource, status=201)

    async def _list_messages(self, request: web.Request) -> web.Response:
        """Messages filtered by To and by sent date (``DateSent``, ``DateSent>``, ``DateSent<``
        with day granularity, as Twilio does); one page, newest first."""
        if not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        query = request.query
        to = query.get("To")
        after = _day(query.get("DateSent>"))
        before = _day(query.get("DateSent<"))
        on = _day(query.get("DateSent"))
        found = []
        for resource in self.messages.values():
            day = parsedate_to_datetime(str(resource["date_created"])).date()
            if to is not None and resource.get("to") != to:
                continue
            if (after and day < after) or (before and day > before) or (on and day != on):
                continue
            found.append(resource)
        found.reverse()
        page_size = int(query.get("PageSize", "50"))
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        return web.json_response(
            {
                "messages": found[:page_size],
                "end": min(len(found), page_size) - 1,
                "first_page_uri": uri,
                "next_page_uri": None,
                "page": 0,
                "page_size": page_size,
                "previous_page_uri": None,
                "start": 0,
                "uri": uri,
            }
        )

    async def _create_call(self, request: web.Request) -> web.Response:
        refused = await self._gate(request)
        if refused is not None:
            return refused
        form = await self._form(request)
        violation = validate_create(CALLS_PATH, form)
        if violation is not None:
            return _error(400, violation.code, violation.message)
        to = form["To"][0]
        code = self.behaviour.failure_numbers.get(to)
        if code is not None and code != 21610:  # STOP is an SMS opt-out; calls still connect
            return _error(400, code, f"The 'To' number {to} is not valid for this request.")
        sid = self._accept("call", form)
        status, _ = self.behaviour.create_statuses.get(to, ("queued", None))
        resource = self._resource(
            "call",
            sid,
            {
                "to": to,
                "to_formatted": to,
                "from": form["From"][0],
                "from_formatted": form["From"][0],
                "status": status,
                "price_unit": "USD",
            },
        )
        self.calls[sid] = resource
        self._spawn(self._call_lifecycle(sid, form))
        return web.json_response(resource, status=201)

    async def _fetch(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error(401, 20003, "Authenticate")
        sid = request.match_info["Sid"]
        resource = self.messages.get(sid) or self.calls.get(sid)
        if resource is None:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        return web.json_response(resource)

    async def _script(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            try:
                self.behaviour.update(await request.json())
            except (ValueError, TypeError, AttributeError, IndexError) as exc:
                return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(self.behaviour.as_dict())

    async def _requests(self, _: web.Request) -> web.Response:
        return web.json_response([asdict(r) for r in self.requests])

    # --- what happens after the create ----------------------------------------------------

    async def _message_lifecycle(self, sid: str, form: dict[str, list[str]]) -> None:
        resource = self.messages[sid]
        url = form.get("StatusCallback", [None])[0]
        failure = self.behaviour.undelivered_numbers.get(resource["to"])
        final = "delivered" if failure is None else "undelivered"
        steps: tuple[str, ...] = ("sent", final)
        if resource["status"] in FAILED_AT_CREATE:  # answered failed: only that is reported
            final, failure, steps = (
                resource["status"],
                resource["error_code"],
                (resource["status"],),
            )
        for status in steps:
            if status == final:
                await sleep_ms(self.behaviour.delivery_delay_ms)
            resource["status"] = status
            resource["date_updated"] = rfc2822(self.clock)
            if status == final and failure is not None:
                resource["error_code"] = failure
            if url:
                params = {
                    "AccountSid": self.account_sid,
                    "ApiVersion": "2010-04-01",
                    "From": resource["from"] or "",
                    "MessageSid": sid,
                    "MessageStatus": status,
                    "SmsSid": sid,
                    "SmsStatus": status,
                    "To": resource["to"],
                }
                if resource["messaging_service_sid"]:
                    params["MessagingServiceSid"] = resource["messaging_service_sid"]
                if status == final and failure is not None:
                    params["ErrorCode"] = str(failure)
                await self.callbacks.post(url, params)

    async def _call_lifecycle(self, sid: str, form: dict[str, list[str]]) -> None:
        resource = self.calls[sid]
        final, answered_by = self.behaviour.call_outcomes.get(
            resource["to"], ("completed", "human")
        )
        if resource["status"] in FAILED_AT_CREATE:
            final, answered_by = resource["status"], None
        amd = bool(form.get("MachineDetection"))
        url = form.get("StatusCallback", [None])[0]
        wanted = set(form.get("StatusCallbackEvent", [])) or {"completed"}
        amd_url = form.get("AsyncAmdStatusCallback", [None])[0]
        for sequence, (event, status) in enumerate(call_events(final)):
            if event == "completed":
                await sleep_ms(self.behaviour.delivery_delay_ms)
            resource["status"] = "queued" if status == "initiated" else status
            resource["date_updated"] = rfc2822(self.clock)
            params = {
                "AccountSid": self.account_sid,
                "ApiVersion": "2010-04-01",
                "CallSid": sid,
                "CallStatus": status,
                "CallbackSource": "call-progress-events",
                "Direction": "outbound-api",
                "From": resource["from"],
                "SequenceNumber": str(sequence),
                "Timestamp": rfc2822(self.clock),
                "To": resource["to"],
            }
            if amd and answered_by is not None and event in {"answered", "completed"}:
                resource["answered_by"] = answered_by
                params["AnsweredBy"] = answered_by
            if event == "completed":
                params["CallDuration"] = "0" if status != "completed" else "20"
            if url and event in wanted:
                await self.callbacks.post(url, params)
            if event == "answered" and amd and amd_url and answered_by is not None:
                amd_params = {
                    "AccountSid": self.account_sid,
                    "AnsweredBy": answered_by,
                    "CallSid": sid,
                    "MachineDetectionDuration": "2400",
                }
                await self.callbacks.post(amd_url, amd_params)


def _day(value: str | None) -> date | None:
    """``YYYY-MM-DD`` or an ISO datetime, as the SDK sends it; the day part is what counts."""
    return None if not value else date.fromisoformat(value[:10])
