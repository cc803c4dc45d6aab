"""A Twilio-compatible REST API on loopback: Messages and Calls, create and fetch.

Basic auth with the account SID and token; form fields validated against Twilio's OpenAPI
description (:mod:`dunning.sandbox.twilio_spec`); Twilio-shaped error and resource JSON that the
twilio SDK parses (:mod:`dunning.sandbox.twilio_resources`); unique ``SM``/``CA`` SIDs; then
signed status callbacks (:mod:`dunning.sandbox.twilio_lifecycle`: SMS sent -> delivered; calls
initiated -> ringing -> answered -> completed, plus the async AMD callback). Failures,
throttling, latency and lost callbacks are scripted by :class:`StandInBehaviour`.

Every accepted create is kept in :attr:`TwilioStandIn.requests` (and ``GET /_sandbox/requests``)
with the ``intent_id`` of its StatusCallback, so drills can count creates per intent.

Run it (with the SMTP sink) by ``dunning sandbox`` or ``python -m dunning.sandbox``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
from collections import Counter
from collections.abc import Coroutine
from dataclasses import asdict
from typing import Any
from urllib.parse import parse_qs

import structlog
from aiohttp import web

from dunning.channels.segments import count_segments
from dunning.clock import Clock, SystemClock
from dunning.sandbox import twilio_resources as resources
from dunning.sandbox.loopback import LoopbackServer, listening_socket
from dunning.sandbox.twilio_behaviour import StandInBehaviour
from dunning.sandbox.twilio_callbacks import CallbackSender
from dunning.sandbox.twilio_gather import Keypad
from dunning.sandbox.twilio_lifecycle import Lifecycle
from dunning.sandbox.twilio_resources import API, CreateRecord, ResourceKind, twilio_error
from dunning.sandbox.twilio_spec import CALLS_PATH, MESSAGES_PATH, validate_create

__all__ = ["CreateRecord", "StandInBehaviour", "TwilioStandIn"]

log = structlog.get_logger(__name__)

#: A recipient who replied STOP has opted out of SMS; calls to the number still connect.
_SMS_ONLY_FAILURES = frozenset({21610})


class TwilioStandIn(LoopbackServer):
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
        super().__init__(host, port)
        self.account_sid = account_sid
        self.auth_token = auth_token
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
        sock = listening_socket(self.host, self.port)
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
            return twilio_error(401, 20003, "Authenticate")
        await self._delay(self.behaviour.response_delay_ms)
        decision = self.behaviour.decide()
        if decision == "429":
            headers = {"Retry-After": str(self.behaviour.retry_after_s)}
            return twilio_error(429, 20429, "Too Many Requests", headers)
        if decision == "500":
            return twilio_error(500, 20500, "Internal Server Error")
        return None

    async def _create_form(
        self, request: web.Request, path: str, ignored: frozenset[int] = frozenset()
    ) -> dict[str, list[str]] | web.Response:
        """The form of a create that passed the gate, the schema and the scripted failing
        numbers (but for the error codes in ``ignored``); otherwise the error response."""
        refused = await self._gate(request)
        if refused is not None:
            return refused
        form = parse_qs(await request.text(), keep_blank_values=True)
        violation = validate_create(path, form)
        if violation is not None:
            return twilio_error(400, violation.code, violation.message)
        to = form["To"][0]
        code = self.behaviour.failure_numbers.get(to)
        if code is not None and code not in ignored:
            return twilio_error(400, code, f"The 'To' number {to} is not valid for this request.")
        return form

    def _created(
        self, kind: ResourceKind, form: dict[str, list[str]], status: str, fields: dict[str, Any]
    ) -> web.Response:
        """Keep an accepted create, start its lifecycle and answer 201 with its resource."""
        sid = ("SM" if kind == "message" else "CA") + secrets.token_hex(16)
        callback = form.get("StatusCallback", [None])[0]
        self.requests.append(CreateRecord(kind, sid, resources.intent_id_of(callback), form))
        resource = resources.new_resource(
            kind, sid, self.account_sid, self.clock, to=form["To"][0], status=status, fields=fields
        )
        lifecycle = self._lifecycle()
        if kind == "message":
            self.messages[sid] = resource
            self._spawn(lifecycle.message(resource, form))
        else:
            self.calls[sid] = resource
            self._spawn(lifecycle.call(resource, form))
        return web.json_response(resource, status=201)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lifecycle(self) -> Lifecycle:
        return Lifecycle(self.account_sid, self.behaviour, self.callbacks, self.clock)

    async def _create_message(self, request: web.Request) -> web.Response:
        form = await self._create_form(request, MESSAGES_PATH)
        if isinstance(form, web.Response):
            return form
        to = form["To"][0]
        body = form.get("Body", [""])[0]
        status, error_code = self.behaviour.create_statuses.get(to, ("queued", None))
        fields = {
            "from": form.get("From", [None])[0],
            "messaging_service_sid": form.get("MessagingServiceSid", [None])[0],
            "body": body,
            "error_code": error_code,
            "error_message": None if error_code is None else f"scripted error {error_code}",
            "num_segments": str(count_segments(body).segments),
            "num_media": str(len(form.get("MediaUrl", []))),
        }
        return self._created("message", form, status, fields)

    async def _list_messages(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return twilio_error(401, 20003, "Authenticate")
        page = resources.message_page(self.messages.values(), request.query, self.account_sid)
        return web.json_response(page)

    async def _create_call(self, request: web.Request) -> web.Response:
        form = await self._create_form(request, CALLS_PATH, ignored=_SMS_ONLY_FAILURES)
        if isinstance(form, web.Response):
            return form
        to = form["To"][0]
        status, _ = self.behaviour.create_statuses.get(to, ("queued", None))
        caller = form["From"][0]
        fields = {"to_formatted": to, "from": caller, "from_formatted": caller}
        return self._created("call", form, status, fields)

    async def _fetch(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return twilio_error(401, 20003, "Authenticate")
        sid = request.match_info["Sid"]
        resource = self.messages.get(sid) or self.calls.get(sid)
        if resource is None:
            return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
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
