"""Status callbacks of the Twilio stand-in: form-encoded POSTs signed as Twilio signs them.

The signature is ``RequestValidator(auth_token).compute_signature(url, params)`` (HMAC-SHA1 over
the exact URL and the sorted parameters), sent as ``X-Twilio-Signature``. A callback URL that
does not answer is logged and ignored, as Twilio does after its retries.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email.utils import format_datetime

import aiohttp
import structlog
from twilio.request_validator import RequestValidator

from dunning.clock import Clock
from dunning.sandbox.twilio_behaviour import StandInBehaviour

__all__ = ["CallbackRecord", "CallbackSender", "call_events", "rfc2822"]

log = structlog.get_logger(__name__)
_CALLBACK_TIMEOUT_S = 5.0


def rfc2822(clock: Clock) -> str:
    """``clock``'s now in Twilio's date format: ``Sat, 28 Nov 2026 02:00:00 +0000``."""
    return format_datetime(clock.now())


@dataclass(frozen=True, slots=True)
class CallbackRecord:
    """One callback the stand-in attempted; ``http_status`` is None when it was not delivered."""

    url: str
    params: dict[str, str]
    dropped: bool
    http_status: int | None


def call_events(final_status: str) -> list[tuple[str, str]]:
    """(event, CallStatus) in order for a call that ends in ``final_status``."""
    if final_status == "completed":
        return [
            ("initiated", "initiated"),
            ("ringing", "ringing"),
            ("answered", "in-progress"),
            ("completed", "completed"),
        ]
    if final_status == "failed":
        return [("initiated", "initiated"), ("completed", "failed")]
    return [("initiated", "initiated"), ("ringing", "ringing"), ("completed", final_status)]


class CallbackSender:
    """Signs and posts callbacks over one session; records every attempt."""

    def __init__(self, auth_token: str, behaviour: StandInBehaviour) -> None:
        self._validator = RequestValidator(auth_token)
        self._behaviour = behaviour
        self._session: aiohttp.ClientSession | None = None
        self.records: list[CallbackRecord] = []

    def sign(self, url: str, params: dict[str, str]) -> str:
        signature: str = self._validator.compute_signature(url, params)
        return signature

    async def post(self, url: str, params: dict[str, str]) -> None:
        """POST one callback unless the behaviour drops it; never raises."""
        if self._behaviour.drop_callback():
            self.records.append(CallbackRecord(url, params, dropped=True, http_status=None))
            return
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=_CALLBACK_TIMEOUT_S)
            )
        headers = {"X-Twilio-Signature": self.sign(url, params)}
        status: int | None = None
        try:
            async with self._session.post(url, data=params, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("sandbox.callback_unreachable", url=url, error=type(exc).__name__)
        self.records.append(CallbackRecord(url, params, dropped=False, http_status=status))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def sleep_ms(delay_ms: int) -> None:
    """Wait ``delay_ms`` (the scripted provider latency; part of the simulation, not a test)."""
    if delay_ms > 0:
        await asyncio.sleep(delay_ms / 1000)
