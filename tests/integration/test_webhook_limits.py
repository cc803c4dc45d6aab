"""Requests the webhook must refuse cheaply and precisely, while signed callbacks keep flowing.

Oversized bodies and field floods are refused (413) before they are read in full or parsed, and
every malformed request (undecodable body, non-ASCII signature or token, JSON nested too deep)
gets its 4xx with a JSON error body instead of a 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest

from dunning.ledger.schema import receipts
from dunning.receipts.limits import MAX_FORM_BYTES, MAX_FORM_FIELDS
from dunning.receipts.signatures import HMAC_HEADER, sign_body
from tests.factories import make_intent
from tests.integration.twilio_support import standin
from tests.integration.webhook_support import Hook, claim, hook

__all__ = ["hook", "standin"]  # fixtures, imported for pytest

TWENTY_MB = 20 * 1024 * 1024
#: A deadline for a request that must be answered; it bounds a hang, it measures nothing.
DEADLINE_S = 30


async def _raw_exchange(hook: Hook, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send ``head`` and ``body`` on a socket of its own, then read the answer (status, body).

    The client sends nothing more: an answer proves the webhook did not wait for the rest of a
    body it was promised.
    """
    address = urlsplit(hook.url)
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    try:
        writer.write(head + body)
        await writer.drain()
        async with asyncio.timeout(DEADLINE_S):
            status_line = await reader.readline()
            headers = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in headers.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        async with asyncio.timeout(DEADLINE_S):
            answer = await reader.readexactly(length)
        return int(status_line.split()[1]), answer
    finally:
        writer.close()


def _head(path: str, extra: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Twilio-Signature: bm90LWEtc2lnbmF0dXJl\r\n{extra}\r\n"
    ).encode()


async def _endless_body(sent: list[int], total: int) -> AsyncIterator[bytes]:
    chunk = b"a" * 65536
    while sent[0] < total:
        sent[0] += len(chunk)
        yield chunk


async def test_floods_and_huge_bodies_get_413_while_a_signed_callback_is_recorded(
    hook: Hook,
) -> None:
    many_fields = "&".join(f"f{i}=v" for i in range(20_000))
    sent = [0]
    flood, streamed, declared, signed, health = await asyncio.gather(
        hook.http.post(
            f"{hook.url}/twilio/status",
            content=many_fields.encode(),
            headers={
                "X-Twilio-Signature": "bm90LWEtc2lnbmF0dXJl",
                "Content-Type": "application/x-www-form-urlencoded",
            },
        ),
        hook.http.post(
            f"{hook.url}/twilio/inbound",
            content=_endless_body(sent, TWENTY_MB),
            headers={"X-Twilio-Signature": "bm90LWEtc2lnbmF0dXJl"},
        ),
        _raw_exchange(hook, _head("/twilio/status", f"Content-Length: {TWENTY_MB}\r\n")),
        hook.post_signed(
            "/twilio/status?intent_id=unknown",
            {"MessageSid": "SM" + "1" * 32, "MessageStatus": "delivered"},
        ),
        hook.http.get(f"{hook.url}/healthz"),
    )
    assert flood.status_code == 413
    assert "bytes" in flood.json()["error"]
    assert streamed.status_code == 413
    assert declared[0] == 413
    assert (signed.status_code, health.status_code) == (200, 200)
    assert hook.count(receipts) == 1


async def test_a_chunked_body_is_refused_once_it_passes_the_cap_without_reading_the_rest(
    hook: Hook,
) -> None:
    chunk = b"a" * (MAX_FORM_BYTES + 1)
    head = _head("/twilio/status", "Transfer-Encoding: chunked\r\n")
    status, answer = await _raw_exchange(hook, head, f"{len(chunk):x}\r\n".encode() + chunk)
    assert status == 413
    assert b"error" in answer


async def test_too_many_fields_in_a_small_body_get_413(hook: Hook) -> None:
    body = "&".join(f"f{i}=" for i in range(MAX_FORM_FIELDS + 1))
    assert len(body) < MAX_FORM_BYTES
    response = await hook.http.post(
        f"{hook.url}/twilio/status",
        content=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert "fields" in response.json()["error"]


async def test_a_form_body_that_is_not_utf8_gets_400(hook: Hook) -> None:
    response = await hook.http.post(
        f"{hook.url}/twilio/status",
        content=b"MessageSid=SM\xff\xfe&MessageStatus=sent",
        headers={
            "X-Twilio-Signature": "bm90LWEtc2lnbmF0dXJl",
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]


@pytest.mark.parametrize("path", ["/twilio/status", "/email/events"])
async def test_a_non_ascii_signature_gets_403(hook: Hook, path: str) -> None:
    header = HMAC_HEADER if path.startswith("/email") else "X-Twilio-Signature"
    response = await hook.http.post(
        f"{hook.url}{path}",
        content=b"MessageSid=SM1&MessageStatus=sent",
        headers={header: "sha256=é".encode(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 403
    assert response.json() == {"error": "invalid signature"}


async def test_a_non_ascii_unsubscribe_token_gets_403(hook: Hook) -> None:
    intent = make_intent()
    claim(hook.ledger, intent)
    response = await hook.http.post(
        f"{hook.url}/email/unsubscribe", params={"intent_id": intent.intent_id, "token": "é" * 32}
    )
    assert response.status_code == 403
    assert "error" in response.json()


async def test_deeply_nested_signed_json_gets_400(hook: Hook) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    response = await hook.http.post(
        f"{hook.url}/letters/events",
        content=body,
        headers={HMAC_HEADER: sign_body(hook.settings.webhook_secret, body)},
    )
    assert response.status_code == 400
    assert "nested" in response.json()["error"]


async def test_a_shared_key_signature_is_refused_by_name(hook: Hook) -> None:
    response = await hook.http.post(
        f"{hook.url}/twilio/status",
        data={"MessageSid": "SM1", "MessageStatus": "sent"},
        headers={
            "X-Twilio-Signature": "bm90LWEtc2lnbmF0dXJl",
            "X-Twilio-Webhooks-Signature-Settings": "key=KS1,algorithm=HMAC_SHA256",
        },
    )
    assert response.status_code == 403
    assert "shared-key" in response.json()["error"]


async def test_every_refusal_is_json(hook: Hook) -> None:
    forged = await hook.http.post(f"{hook.url}/twilio/status", data={"MessageSid": "SM1"})
    unsigned_json = await hook.http.post(f"{hook.url}/email/events", content=b"{}")
    assert forged.status_code == 403
    assert unsigned_json.status_code == 403
    for response in (forged, unsigned_json):
        assert response.headers["content-type"].startswith("application/json")
    body = b'{"events": "not a list"}'
    bad = await hook.http.post(
        f"{hook.url}/email/events",
        content=body,
        headers={HMAC_HEADER: sign_body(hook.settings.webhook_secret, body)},
    )
    assert bad.status_code == 400
    assert bad.json()["error"].startswith("events")
