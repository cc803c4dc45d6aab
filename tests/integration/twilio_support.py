"""Test plumbing for the Twilio channels: a callback receiver and settings for the stand-in."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest_asyncio
from aiohttp import web

from dunning.sandbox.twilio_api import TwilioStandIn
from dunning.settings import Settings

ACCOUNT_SID = "AC" + "5" * 32
AUTH_TOKEN = "stand-in-token"


@dataclass
class ReceivedCallback:
    url: str
    path: str
    params: dict[str, str]
    signature: str


@dataclass
class CallbackReceiver:
    """An aiohttp app that keeps every POST it receives, as a webhook would see it."""

    received: list[ReceivedCallback] = field(default_factory=list)
    base_url: str = ""
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        params = {k: str(v) for k, v in form.items()}
        signature = request.headers.get("X-Twilio-Signature", "")
        async with self._changed:
            self.received.append(
                ReceivedCallback(str(request.url), request.path, params, signature)
            )
            self._changed.notify_all()
        return web.Response(text="<Response/>", content_type="text/xml")

    async def wait_for(self, count: int, timeout_s: float = 5.0) -> list[ReceivedCallback]:
        """Wait until ``count`` callbacks arrived; raises TimeoutError otherwise."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: len(self.received) >= count)
        return list(self.received)


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    rec = CallbackReceiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    rec.base_url = f"http://127.0.0.1:{port}"
    yield rec
    await runner.cleanup()


@pytest_asyncio.fixture
async def standin() -> AsyncIterator[TwilioStandIn]:
    async with TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN) as server:
        yield server


def settings_for(server: TwilioStandIn | str, webhook_url: str, **changes: object) -> Settings:
    base = server if isinstance(server, str) else server.base_url
    values: dict[str, object] = {
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_api_base": base,
        "twilio_timeout_s": 5.0,
        "webhook_public_url": webhook_url,
        "webhook_secret": "stand-in-webhook-secret",
        "unsubscribe_secret": "stand-in-unsubscribe-secret",
    }
    values.update(changes)
    return Settings(**values)  # type: ignore[arg-type]


def closed_port() -> int:
    """A port with nothing listening (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
