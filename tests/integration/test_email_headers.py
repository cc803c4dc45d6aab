"""What arrives at the SMTP server is exactly the message dunning built, whatever the name.

Real aiosmtplib over a loopback socket to the SMTP sink; the received bytes are parsed and
their headers compared, name by name and value by value, with the message as built. A name
that would forge headers (CVE-2024-6923 on Python before 3.11.10/3.12.5) is refused before
anything is sent.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
from collections.abc import AsyncIterator
from email.header import decode_header, make_header

import pytest

from dunning.channels.email import EmailChannel
from dunning.channels.email_message import render_email
from dunning.errors import PermanentChannelError
from dunning.sandbox.smtp_sink import SmtpSink
from tests.integration.test_email_channel import email_intent, make_channel, part

FORGING_NAMES = {
    "Bcc in an encoded word": "=?utf-8?q?x=0D=0ABcc=3A_evil=40attacker.example=0D=0A?=",
    "HTML body in an encoded word": (
        "=?utf-8?q?x=0D=0AContent-Type=3A_text=2Fhtml=0D=0A=0D=0A<b>pay_to_evil</b>=0D=0A?="
    ),
    "raw CR LF": "Jane\r\nBcc: evil@attacker.example",
    "5,000 characters": "J" * 5000,
}
AWKWARD_NAMES = {
    "Chinese": "张三丰",
    "quotes, comma and angle brackets": 'Doe, "Jane" <Janie>',
    "equals and question marks": "Jane =? Doe ?",
    "200 characters": "Ж" * 200,
}


def wire_headers(raw: bytes) -> list[tuple[str, str]]:
    """The top-level headers as received: unfolded, RFC 2047 words decoded.

    The decoder of ``email.header`` drops the white space between adjacent encoded words, as
    RFC 2047 says (the newer header parser keeps it inside a long display name).
    """
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    return [
        (key, str(make_header(decode_header(re.sub(r"\r?\n", "", str(value))))))
        for key, value in message.items()
    ]


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as running:
        yield running


@pytest.fixture
async def channel(sink: SmtpSink) -> AsyncIterator[EmailChannel]:
    adapter = make_channel(sink)
    yield adapter
    await adapter.aclose()


@pytest.mark.parametrize(
    "name",
    [*AWKWARD_NAMES.values(), *FORGING_NAMES.values()],
    ids=[*AWKWARD_NAMES, *FORGING_NAMES],
)
async def test_what_arrives_is_exactly_what_was_built_or_nothing(
    sink: SmtpSink, channel: EmailChannel, name: str
) -> None:
    intent = email_intent("US")
    intent = dataclasses.replace(intent, recipient=dataclasses.replace(intent.recipient, name=name))
    refused: PermanentChannelError | None = None
    try:
        meant = channel.build_message(intent)
        await channel.send(intent, attempt=1)
    except PermanentChannelError as exc:
        refused = exc
    if refused is not None:
        assert refused.provider_code == "unsafe_header"
        assert name in FORGING_NAMES.values()
        assert sink.messages == []
        return
    [received] = await sink.wait_for(1)
    got = received.message
    assert got.keys() == meant.keys()
    for key, value in wire_headers(received.raw):
        if key != "Content-Type":  # its boundary is drawn when the message is written
            assert value == str(meant[key]), key
    assert got.get_content_type() == meant.get_content_type() == "multipart/alternative"
    assert got.get_all("Bcc") is None
    assert len(got.get_all("Content-Type") or []) == 1
    rendered = render_email(channel.templates, channel.config, intent)
    assert part(got, "plain").replace("\r\n", "\n").strip() == rendered.text
    assert part(got, "html").replace("\r\n", "\n").strip() == rendered.html
    assert received.rcpt_tos == ("zhang.san@example.com",)


@pytest.mark.parametrize("name", list(FORGING_NAMES.values()), ids=list(FORGING_NAMES))
async def test_a_name_that_would_forge_headers_is_refused_and_nothing_is_sent(
    sink: SmtpSink, channel: EmailChannel, name: str
) -> None:
    intent = email_intent("US")
    intent = dataclasses.replace(intent, recipient=dataclasses.replace(intent.recipient, name=name))
    with pytest.raises(PermanentChannelError) as caught:
        await channel.send(intent, attempt=1)
    assert caught.value.provider_code == "unsafe_header"
    # The same fault of another person dead-letters under the same reason.
    other = email_intent("US", address="li.na@example.com")
    other = dataclasses.replace(other, recipient=dataclasses.replace(other.recipient, name=name))
    with pytest.raises(PermanentChannelError) as again:
        await channel.send(other, attempt=1)
    assert again.value.reason == caught.value.reason
    # Then a good send on the same connection arrives alone, with nothing forged into it.
    await channel.send(email_intent("US"), attempt=1)
    [received] = await sink.wait_for(1)
    assert received.message.get_all("Bcc") is None
    assert b"evil" not in received.raw
