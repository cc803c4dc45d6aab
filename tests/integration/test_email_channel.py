"""EmailChannel through the real aiosmtplib to the SMTP sink over a loopback socket."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from dunning.channels.email import EmailChannel, SmtpOptions
from dunning.channels.email_message import EmailConfig, verify_unsubscribe_token
from dunning.clock import ManualClock
from dunning.errors import PermanentChannelError, TransientChannelError
from dunning.intents import Channel, ContactIntent, Recipient
from dunning.sandbox.smtp_sink import SmtpSink
from dunning.templates import TemplateStore
from tests.factories import T0, make_intent

TEMPLATES = Path(__file__).resolve().parents[2] / "config" / "templates"
SECRET = "test-secret"
PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def email_config(**overrides: object) -> EmailConfig:
    base = EmailConfig(
        from_address="notice@mail.example-finance.com",
        message_id_domain="mail.example-finance.com",
        unsubscribe_url="https://hooks.example-finance.com/email/unsubscribe",
        unsubscribe_secret=SECRET,
        from_names={"CN": "XX消费金融", "US": "Example Consumer Finance"},
        contact_numbers={"CN": "+864008001234", "US": "+18005550199"},
        envelope_from="bounces+{intent_id}@mail.example-finance.com",
        pool_size=1,
        probe_idle_s=60.0,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


def make_channel(sink: SmtpSink, **overrides: object) -> EmailChannel:
    username = overrides.pop("username", None)
    password = overrides.pop("password", None)
    smtp = SmtpOptions(
        sink.host,
        int(overrides.pop("port", sink.port)),  # type: ignore[call-overload]
        username=username,  # type: ignore[arg-type]
        password=password,  # type: ignore[arg-type]
        timeout_s=float(overrides.pop("timeout_s", 5.0)),  # type: ignore[arg-type]
    )
    return EmailChannel(
        smtp, email_config(**overrides), TemplateStore(TEMPLATES), clock=ManualClock(T0)
    )


def email_intent(jurisdiction: str = "CN", address: str = "zhang.san@example.com") -> ContactIntent:
    intent = make_intent(Channel.EMAIL, jurisdiction=jurisdiction)
    recipient = dataclasses.replace(intent.recipient, email=address)
    return dataclasses.replace(intent, recipient=recipient)


def part(message: EmailMessage, subtype: str) -> str:
    body = message.get_body((subtype,))
    assert body is not None, f"no text/{subtype} part"
    return str(body.get_content())


@pytest.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as running:
        yield running


@pytest.fixture
async def channel(sink: SmtpSink) -> AsyncIterator[EmailChannel]:
    adapter = make_channel(sink)
    yield adapter
    await adapter.aclose()


async def test_chinese_email_arrives_with_headers_both_parts_and_attachment(
    sink: SmtpSink, channel: EmailChannel
) -> None:
    intent = email_intent("CN")
    result = await channel.send(
        intent, attempt=1, attachments=[("律师函-1234.pdf", PDF, "application/pdf")]
    )

    (received,) = await sink.wait_for(1, timeout_s=5)
    msg = received.message
    message_id = f"<{intent.intent_id}@mail.example-finance.com>"
    assert result.provider_ref == message_id
    assert result.status == "accepted"
    assert msg["Message-ID"] == message_id
    assert msg["Subject"] == f"XX消费金融：您尾号{intent.account_id[-4:]}的账户已逾期5天"
    assert b"=?utf-8?" in received.raw.split(b"\r\n\r\n", 1)[0]  # RFC 2047 on the wire
    assert msg["From"].addresses[0].display_name == "XX消费金融"
    assert msg["From"].addresses[0].addr_spec == "notice@mail.example-finance.com"
    assert msg["To"].addresses[0].addr_spec == "zhang.san@example.com"
    assert received.mail_from == f"bounces+{intent.intent_id}@mail.example-finance.com"
    assert received.rcpt_tos == ("zhang.san@example.com",)

    https = str(msg["List-Unsubscribe"]).strip("<>")  # the one-click URL only: no mailto
    assert https.startswith(
        f"https://hooks.example-finance.com/email/unsubscribe?intent_id={intent.intent_id}&token="
    )
    assert verify_unsubscribe_token(SECRET, intent.intent_id, https.rsplit("=", 1)[1])
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    text, html = part(msg, "plain"), part(msg, "html")
    for body in (text, html):
        assert "张三" in body
        assert "¥1,234.50" in body
        assert "退订" in body
    assert https in text
    assert f'href="{https.replace("&", "&amp;")}"' in html

    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() == "律师函-1234.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == PDF


async def test_us_email_carries_debt_collector_disclosure_and_opt_out(
    sink: SmtpSink, channel: EmailChannel
) -> None:
    await channel.send(email_intent("US"), attempt=1)

    (received,) = await sink.wait_for(1, timeout_s=5)
    assert received.message["From"].addresses[0].display_name == "Example Consumer Finance"
    assert not list(received.message.iter_attachments())
    for body in (part(received.message, "plain"), part(received.message, "html")):
        assert "This communication is from a debt collector" in body
        assert "attempt to collect a debt" in body
        assert "unsubscribe" in body.lower()
        assert "$1,234.50" in body


async def test_html_part_escapes_template_values_and_text_part_does_not(
    sink: SmtpSink, channel: EmailChannel
) -> None:
    intent = email_intent("US")
    intent = dataclasses.replace(intent, recipient=Recipient(name="<b>Jo</b> & Co", email="j@x.io"))
    await channel.send(intent, attempt=1)

    (received,) = await sink.wait_for(1, timeout_s=5)
    assert "&lt;b&gt;Jo&lt;/b&gt; &amp; Co" in part(received.message, "html")
    assert "<b>Jo</b> & Co" in part(received.message, "plain")


async def test_recipient_refused_550_is_permanent_and_connection_stays_usable(
    sink: SmtpSink, channel: EmailChannel
) -> None:
    sink.fail_recipient("gone@example.com", code=550)

    with pytest.raises(PermanentChannelError) as caught:
        await channel.send(email_intent(address="gone@example.com"), attempt=1)
    assert caught.value.provider_code == "550"
    assert "recipient refused" in caught.value.reason
    assert "gone@example.com" not in str(caught.value)  # reasons end up in logs and headers

    await channel.send(email_intent(address="ok@example.com"), attempt=1)
    (received,) = await sink.wait_for(1, timeout_s=5)
    assert received.rcpt_tos == ("ok@example.com",)
    assert sink.connections == 1


@pytest.mark.parametrize("stage", ["rcpt", "data"])
async def test_451_is_transient_and_the_next_send_succeeds(
    sink: SmtpSink, channel: EmailChannel, stage: str
) -> None:
    sink.fail_next(1, code=451, at=stage)  # type: ignore[arg-type]

    with pytest.raises(TransientChannelError) as caught:
        await channel.send(email_intent(), attempt=1)
    assert caught.value.provider_code == "451"
    assert not sink.messages

    await channel.send(email_intent(), attempt=2)
    assert len(await sink.wait_for(1, timeout_s=5)) == 1
    assert sink.connections == 1


async def test_554_at_end_of_data_is_permanent(sink: SmtpSink, channel: EmailChannel) -> None:
    sink.fail_next(1, code=554, at="data")

    with pytest.raises(PermanentChannelError) as caught:
        await channel.send(email_intent(), attempt=1)
    assert caught.value.provider_code == "554"
    assert "message refused" in caught.value.reason


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_transient(sink: SmtpSink) -> None:
    adapter = make_channel(sink, port=free_port())
    with pytest.raises(TransientChannelError) as caught:
        await adapter.send(email_intent(), attempt=1)
    assert "connect" in caught.value.reason.lower()
    await adapter.aclose()


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP listener that accepts and never greets: the SMTP client must time out."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        yield int(listener.getsockname()[1])


async def test_server_that_never_answers_times_out_as_transient(
    sink: SmtpSink, silent_server: int
) -> None:
    adapter = make_channel(sink, port=silent_server, timeout_s=0.3)
    with pytest.raises(TransientChannelError) as caught:
        await adapter.send(email_intent(), attempt=1)
    assert "timed out" in caught.value.reason.lower()
    assert not caught.value.ambiguous  # nothing was sent before the greeting
    await adapter.aclose()


async def test_sequential_sends_reuse_one_connection(sink: SmtpSink, channel: EmailChannel) -> None:
    intents = [email_intent() for _ in range(6)]
    for intent in intents:
        await channel.send(intent, attempt=1)

    received = await sink.wait_for(6, timeout_s=5)
    assert sink.connections == 1
    assert channel.connections_opened == 1
    assert {r.message["Message-ID"] for r in received} == {
        f"<{i.intent_id}@mail.example-finance.com>" for i in intents
    }


async def test_concurrent_sends_share_a_pool_of_two(sink: SmtpSink) -> None:
    adapter = make_channel(sink, pool_size=2)
    intents = [email_intent() for _ in range(10)]
    await asyncio.gather(*(adapter.send(i, attempt=1) for i in intents))

    assert len(await sink.wait_for(10, timeout_s=5)) == 10
    assert 1 <= sink.connections <= 2
    await adapter.aclose()


async def test_reconnects_after_the_server_closed_an_idle_connection(sink: SmtpSink) -> None:
    adapter = make_channel(sink, probe_idle_s=0.0)  # probe before every reuse
    await adapter.send(email_intent(), attempt=1)
    await sink.wait_for(1, timeout_s=5)
    assert sink.close_connections() == 1

    await adapter.send(email_intent(), attempt=1)
    assert len(await sink.wait_for(2, timeout_s=5)) == 2
    assert sink.connections == 2
    await adapter.aclose()


async def test_drop_during_data_is_transient_and_the_next_send_reconnects(
    sink: SmtpSink, channel: EmailChannel
) -> None:
    sink.drop_next(1)
    with pytest.raises(TransientChannelError) as caught:
        await channel.send(email_intent(), attempt=1)
    assert "disconnected" in caught.value.reason.lower()

    await channel.send(email_intent(), attempt=2)
    assert len(await sink.wait_for(1, timeout_s=5)) == 1
    assert sink.connections == 2


@pytest.fixture
async def auth_sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink(username="mailer", password="s3cret") as running:
        yield running


async def test_auth_required_sends_with_the_configured_login(auth_sink: SmtpSink) -> None:
    adapter = make_channel(auth_sink, username="mailer", password="s3cret")
    await adapter.send(email_intent(), attempt=1)

    (received,) = await auth_sink.wait_for(1, timeout_s=5)
    assert received.login == "mailer"
    await adapter.aclose()


async def test_wrong_password_is_transient_with_the_reply_code(auth_sink: SmtpSink) -> None:
    adapter = make_channel(auth_sink, username="mailer", password="wrong")
    with pytest.raises(TransientChannelError) as caught:
        await adapter.send(email_intent(), attempt=1)
    assert caught.value.provider_code == "535"
    assert not auth_sink.messages
    await adapter.aclose()


async def test_missing_login_where_auth_is_required_is_transient(auth_sink: SmtpSink) -> None:
    adapter = make_channel(auth_sink)
    with pytest.raises(TransientChannelError) as caught:
        await adapter.send(email_intent(), attempt=1)
    assert caught.value.provider_code == "530"
    await adapter.aclose()


async def test_aclose_quits_and_refuses_further_sends(sink: SmtpSink) -> None:
    adapter = make_channel(sink)
    await adapter.send(email_intent(), attempt=1)
    await adapter.aclose()

    with pytest.raises(TransientChannelError):
        await adapter.send(email_intent(), attempt=1)
    assert len(sink.messages) == 1


async def test_from_settings_reads_channels_toml_and_templates(sink: SmtpSink) -> None:
    from dunning.settings import Settings

    settings = Settings(
        config_dir=TEMPLATES.parent, smtp_host=sink.host, smtp_port=sink.port, smtp_timeout_s=5
    )
    adapter = EmailChannel.from_settings(settings)
    await adapter.send(email_intent("US"), attempt=1)

    (received,) = await sink.wait_for(1, timeout_s=5)
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/email/unsubscribe?intent_id=" in str(received.message["List-Unsubscribe"])
    await adapter.aclose()
