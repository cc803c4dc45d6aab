"""`dunning loadtest --twilio-api-base` against a Twilio-compatible server that is not the stand-in.

The server here answers Twilio's own API (the stand-in's handlers) and nothing of
``/_sandbox/*``, as any other Twilio-compatible endpoint would: no scripting, no record of
creates to read back. The test keeps that record in-process to check what the workers sent.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from dunning.errors import ConfigError
from dunning.loadtest import LoadTestConfig, run_loadtest
from dunning.loadtest.generator import IntentMix
from dunning.loadtest.processes import SANDBOX_SCRIPT
from dunning.sandbox.twilio_api import API, TwilioStandIn
from dunning.sandbox.twilio_behaviour import StandInBehaviour
from dunning.settings import Settings
from tests.services import RABBITMQ_URL, require

pytestmark = pytest.mark.integration


class PlainTwilio(TwilioStandIn):
    """Twilio's message and call resources only: ``/_sandbox/*`` answers 404."""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post(f"{API}/Messages.json", self._create_message)
        app.router.add_get(f"{API}/Messages/{{Sid}}.json", self._fetch)
        app.router.add_post(f"{API}/Calls.json", self._create_call)
        return app


@pytest.fixture
def plain_twilio() -> Iterator[PlainTwilio]:
    settings = Settings()
    # Nothing listens for status callbacks in a load test: this server's operator drops them.
    server = PlainTwilio(
        settings.twilio_account_sid,
        settings.twilio_auth_token,
        behaviour=StandInBehaviour(drop_callback_rate=1.0),
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=30)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def _config(tmp_path: Path, api_base: str, **behaviour: float) -> LoadTestConfig:
    return LoadTestConfig(
        intents=60,
        rate_per_s=200.0,
        workers=1,
        mix=IntentMix(jurisdictions=(("CN", 1.0),)),
        broker_url=RABBITMQ_URL,
        run_dir=tmp_path,
        twilio_api_base=api_base,
        behaviour=dict(behaviour),
        max_seconds=60,
    )


def test_a_run_against_a_plain_endpoint_skips_scripting_and_says_so(
    tmp_path: Path, plain_twilio: PlainTwilio
) -> None:
    require("rabbitmq")
    config = _config(tmp_path, plain_twilio.base_url, rate_429=0.0, rate_500=0.0)
    result = run_loadtest(config)
    assert result.finished
    assert result.sent == result.published == 60
    assert result.duplicates is None  # the endpoint keeps no record the run could read
    assert result.creates_seen is None
    assert len(result.notes) == 2
    assert SANDBOX_SCRIPT in result.notes[0]
    assert "scripting skipped" in result.notes[0]
    assert "duplicates not counted" in result.notes[1]
    creates = plain_twilio.creates_per_intent()  # a server of this test's own: all the run's
    assert len(creates) == 60
    assert set(creates.values()) == {1}  # each intent created once at the endpoint


def test_scripted_faults_against_a_plain_endpoint_are_refused(
    tmp_path: Path, plain_twilio: PlainTwilio
) -> None:
    require("rabbitmq")
    config = _config(tmp_path, plain_twilio.base_url, rate_500=0.05)
    with pytest.raises(ConfigError, match=r"/_sandbox/script answered HTTP 404.*rate_500"):
        run_loadtest(config)
    assert plain_twilio.requests == []  # refused before any worker started
