"""Test plumbing for the webhook: a running app on loopback, requests signed as providers sign.

``Hook`` is the webhook under test; ``hook`` runs it over SQLite in tmp_path, ``start_hook`` over
any ledger URL (the PostgreSQL tests pass ``postgres_schema()``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy import func, select
from starlette.applications import Starlette
from twilio.request_validator import RequestValidator

from dunning.intents import ContactIntent
from dunning.ledger import Ledger
from dunning.receipts.app import create_app
from dunning.receipts.server import bind, serving
from dunning.receipts.signatures import HMAC_HEADER, sign_body
from dunning.sandbox.twilio_api import TwilioStandIn
from dunning.settings import Settings
from tests.factories import T0
from tests.integration.twilio_support import AUTH_TOKEN, settings_for

CONFIG = Path(__file__).resolve().parents[2] / "config"
OUR_NUMBER = "+15005550006"


@dataclass
class Hook:
    """A running webhook: its URL, app, ledger and settings."""

    url: str
    app: Starlette
    ledger: Ledger
    settings: Settings
    http: httpx.AsyncClient

    async def post_signed(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        sign_url: str | None = None,
        token: str = AUTH_TOKEN,
    ) -> httpx.Response:
        """POST form ``params`` to ``path`` signed as Twilio would sign ``sign_url``."""
        public = sign_url or f"{self.settings.webhook_public_url}{path}"
        signature = RequestValidator(token).compute_signature(public, dict(params))
        headers = {"X-Twilio-Signature": signature}
        return await self.http.post(f"{self.url}{path}", data=dict(params), headers=headers)

    async def post_json(
        self, path: str, payload: Any, *, secret: str | None = None
    ) -> httpx.Response:
        """POST ``payload`` as JSON signed with ``X-Dunning-Signature``."""
        body = json.dumps(payload).encode()
        signature = sign_body(secret or self.settings.webhook_secret, body)
        headers = {HMAC_HEADER: signature, "Content-Type": "application/json"}
        return await self.http.post(f"{self.url}{path}", content=body, headers=headers)

    def count(self, table: Any, *where: Any) -> int:
        with self.ledger._engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


@asynccontextmanager
async def start_hook(
    standin: TwilioStandIn, database_url: str, **changes: object
) -> AsyncIterator[Hook]:
    """The webhook on a free loopback port over the ledger at ``database_url``."""
    sock, url = bind()
    settings = settings_for(standin, url, config_dir=CONFIG, now=T0, **changes)
    ledger = Ledger.open(database_url)
    try:
        app = create_app(settings, ledger)
        async with serving(app, sock), httpx.AsyncClient(timeout=30) as http:
            yield Hook(url, app, ledger, settings, http)
    finally:
        ledger.close()


@pytest_asyncio.fixture
async def hook(standin: TwilioStandIn, tmp_path: Path) -> AsyncIterator[Hook]:
    async with start_hook(standin, f"sqlite:///{tmp_path / 'ledger.db'}") as running:
        yield running


def claim(ledger: Ledger, intent: ContactIntent) -> int:
    """Publish and claim ``intent`` as a worker would; returns the attempt number."""
    ledger.record_published([intent], now=T0)
    return ledger.claim(intent, worker="test", now=T0, reconcile_after_s=900).attempt
