"""The Twilio stand-in itself: auth, spec validation, SIDs, scripting, records, its own process."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import pytest_asyncio
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from dunning.channels.twilio.http import DunningTwilioHttpClient
from dunning.sandbox.twilio_api import StandInBehaviour, TwilioStandIn
from tests.integration.twilio_support import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CallbackReceiver,
    receiver,
    standin,
)

__all__ = ["receiver", "standin"]  # fixtures, imported for pytest

MESSAGES = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
CALLS = f"/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json"
OK_SMS = {"To": "+12025550143", "From": "+15005550006", "Body": "hello"}


def _auth(token: str) -> dict[str, str]:
    encoded = base64.b64encode(f"{ACCOUNT_SID}:{token}".encode()).decode()
    return {"Authorization": f"Basic {encoded}"}


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def _post(
    session: aiohttp.ClientSession,
    server: TwilioStandIn,
    path: str,
    form: dict[str, str] | list[tuple[str, str]],
    token: str = AUTH_TOKEN,
) -> tuple[int, dict[str, object]]:
    headers = _auth(token)
    async with session.post(server.base_url + path, data=form, headers=headers) as response:
        return response.status, await response.json()


async def test_wrong_token_is_401_in_twilio_shape(
    standin: TwilioStandIn, http: aiohttp.ClientSession
) -> None:
    status, body = await _post(http, standin, MESSAGES, OK_SMS, token="wrong")
    assert status == 401
    assert body == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
    }
    assert standin.requests == []


@pytest.mark.parametrize(
    ("path", "form", "code"),
    [
        (MESSAGES, {"From": "+15005550006", "Body": "x"}, 21604),
        (MESSAGES, {"To": "+12025550143", "Body": "x"}, 21603),
        (MESSAGES, {"To": "+12025550143", "From": "+15005550006"}, 21602),
        (MESSAGES, {**OK_SMS, "Colour": "red"}, 20001),
        (MESSAGES, {**OK_SMS, "TrafficType": "paid"}, 20001),
        (MESSAGES, {**OK_SMS, "ValidityPeriod": "soon"}, 20001),
        (MESSAGES, {**OK_SMS, "SmartEncoded": "maybe"}, 20001),
        (CALLS, {"To": "+12025550143", "From": "+15005550006"}, 21205),
        (CALLS, {"To": "+12025550143", "From": "+1", "Twiml": "<Response/>", "Method": "PUT"},
         20001),
    ],
)  # fmt: skip
async def test_requests_the_spec_rejects_are_400(
    standin: TwilioStandIn,
    http: aiohttp.ClientSession,
    path: str,
    form: dict[str, str],
    code: int,
) -> None:
    status, body = await _post(http, standin, path, form)
    assert status == 400
    assert body["code"] == code
    assert body["status"] == 400
    assert set(body) == {"code", "message", "more_info", "status"}
    assert standin.requests == []


async def test_sids_are_unique_and_fetch_follows_the_callbacks(standin: TwilioStandIn) -> None:
    http = DunningTwilioHttpClient(timeout_s=5, api_base=standin.base_url)
    client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
    try:
        messages = await asyncio.gather(
            *(
                client.messages.create_async(to="+12025550143", from_="+15005550006", body="hi")
                for _ in range(50)
            )
        )
        await standin.wait_idle()
        fetched = await client.messages(messages[0].sid).fetch_async()
        with pytest.raises(TwilioRestException) as missing:
            await client.messages("SM" + "0" * 32).fetch_async()
    finally:
        await http.aclose()
    sids = {m.sid for m in messages}
    assert len(sids) == 50
    assert all(re.fullmatch(r"SM[0-9a-f]{32}", sid) for sid in sids)
    assert fetched.status == "delivered"
    assert fetched.num_segments == "1"
    assert fetched.date_created is not None  # the SDK parsed the RFC 2822 date
    assert missing.value.status == 404
    assert missing.value.code == 20404


async def test_requests_record_intent_ids_and_count_duplicates(
    standin: TwilioStandIn, http: aiohttp.ClientSession
) -> None:
    callback = "http://127.0.0.1:9/twilio/status?intent_id="
    for intent_id in ("a" * 32, "b" * 32, "a" * 32):
        status, _ = await _post(
            http, standin, MESSAGES, {**OK_SMS, "StatusCallback": callback + intent_id}
        )
        assert status == 201
    assert standin.creates_per_intent() == {"a" * 32: 2, "b" * 32: 1}
    async with http.get(standin.base_url + "/_sandbox/requests") as response:
        listed = await response.json()
    assert [r["intent_id"] for r in listed] == ["a" * 32, "b" * 32, "a" * 32]
    assert listed[0]["form"]["Body"] == ["hello"]
    await standin.wait_idle()  # unreachable callback URLs are logged and ignored
    assert {r.http_status for r in standin.callbacks.records} == {None}


async def test_script_endpoint_changes_behaviour(
    standin: TwilioStandIn, http: aiohttp.ClientSession
) -> None:
    async with http.post(
        standin.base_url + "/_sandbox/script",
        json={"failure_numbers": {"+12025550143": 21614}, "retry_after_s": 3},
    ) as response:
        assert response.status == 200
    status, body = await _post(http, standin, MESSAGES, OK_SMS)
    assert (status, body["code"]) == (400, 21614)
    async with http.post(standin.base_url + "/_sandbox/script", json={"bogus": 1}) as response:
        assert response.status == 400
    async with http.post(standin.base_url + "/_sandbox/script", json={"rate_429": 1}) as response:
        assert response.status == 200
    async with http.post(
        standin.base_url + MESSAGES, data=OK_SMS, headers=_auth(AUTH_TOKEN)
    ) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "3"
        assert (await response.json())["code"] == 20429


async def _statuses(seed: int, count: int) -> list[int]:
    behaviour = StandInBehaviour(seed=seed, rate_429=0.3, rate_500=0.3)
    async with (
        TwilioStandIn(ACCOUNT_SID, AUTH_TOKEN, behaviour=behaviour) as server,
        aiohttp.ClientSession() as session,
    ):
        return [(await _post(session, server, MESSAGES, OK_SMS))[0] for _ in range(count)]


async def test_scripted_failures_are_deterministic_given_a_seed() -> None:
    first = await _statuses(seed=7, count=30)
    again = await _statuses(seed=7, count=30)
    other = await _statuses(seed=8, count=30)
    assert first == again
    assert first != other
    assert {201, 429, 500} <= set(first)


async def test_dropped_callbacks_are_never_posted(
    standin: TwilioStandIn, http: aiohttp.ClientSession, receiver: CallbackReceiver
) -> None:
    standin.behaviour.drop_callback_rate = 1.0
    callback = f"{receiver.base_url}/twilio/status?intent_id={'c' * 32}"
    status, _ = await _post(http, standin, MESSAGES, {**OK_SMS, "StatusCallback": callback})
    assert status == 201
    await standin.wait_idle()
    assert [r.dropped for r in standin.callbacks.records] == [True, True]
    assert receiver.received == []


@contextlib.asynccontextmanager
async def _sandbox_process(**env: str) -> AsyncIterator[str]:
    """``python -m dunning.sandbox`` on free ports; yields the Twilio base URL it printed and
    asserts on the way out that SIGTERM stopped it cleanly."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dunning.sandbox", "--twilio-port", "0", "--smtp-port", "0",
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env={
            **clean,
            "DUNNING_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "DUNNING_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "DUNNING_LOG_FORMAT": "json",
            **env,
        },
    )  # fmt: skip
    try:
        assert process.stdout is not None
        base_url = ""
        printed: list[str] = []
        async with asyncio.timeout(20):
            while not base_url:
                line = (await process.stdout.readline()).decode()
                assert line, "the sandbox exited before printing its settings"
                printed.append(line.strip())
                if line.startswith("export DUNNING_TWILIO_API_BASE="):
                    base_url = line.strip().split("=", 1)[1]
        assert "export DUNNING_SANDBOX=true" in printed  # the webhook may then use its secrets
        yield base_url
    finally:
        process.terminate()
        async with asyncio.timeout(20):
            code = await process.wait()
    assert code == 0


async def test_runs_as_its_own_process() -> None:
    async with _sandbox_process() as base_url:
        http = DunningTwilioHttpClient(timeout_s=5, api_base=base_url)
        client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
        try:
            message = await client.messages.create_async(
                to="+12025550143", from_="+15005550006", body="hi"
            )
        finally:
            await http.aclose()
        assert message.status == "queued"


async def test_a_sandbox_started_with_dunning_now_dates_messages_by_it() -> None:
    # A day that is not today whenever this runs: the workers of a drill pinned to it look
    # their messages up by that day (DateSent), so the stand-in must date them the same way.
    pinned = datetime(2031, 3, 14, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    async with _sandbox_process(DUNNING_NOW=pinned.isoformat()) as base_url:
        http = DunningTwilioHttpClient(timeout_s=5, api_base=base_url)
        client = Client(ACCOUNT_SID, AUTH_TOKEN, http_client=http)
        try:
            created = await client.messages.create_async(
                to="+12025550143", from_="+15005550006", body="hi"
            )
            listed = await client.messages.list_async(
                to="+12025550143", date_sent=date(2031, 3, 14), limit=5
            )
        finally:
            await http.aclose()
    assert created.date_created is not None
    assert created.date_created.date() == date(2031, 3, 14)
    assert created.date_created >= pinned
    assert [m.sid for m in listed] == [created.sid]
