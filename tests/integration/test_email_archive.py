"""Every email kept as sent when an archive is set: the file's SHA-256 is the one the send
recorded, so a legal handover can prove the email it bundles is the one that went out."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from dunning.channels.email import EmailChannel, SmtpOptions
from dunning.clock import ManualClock
from dunning.sandbox.smtp_sink import SmtpSink
from dunning.templates import TemplateStore
from tests.factories import T0
from tests.integration.test_email_channel import TEMPLATES, email_config, email_intent


@pytest_asyncio.fixture
async def sink() -> AsyncIterator[SmtpSink]:
    async with SmtpSink() as running:
        yield running


async def test_the_archived_email_is_the_one_sent(sink: SmtpSink, tmp_path: Path) -> None:
    channel = EmailChannel(
        SmtpOptions(sink.host, sink.port, timeout_s=5.0), email_config(),
        TemplateStore(TEMPLATES), clock=ManualClock(T0), archive=tmp_path / "emails",
    )  # fmt: skip
    intent = email_intent()
    try:
        result = await channel.send(intent, attempt=1)
    finally:
        await channel.aclose()
    kept = (tmp_path / "emails" / f"{intent.intent_id}.eml").read_bytes()
    assert hashlib.sha256(kept).hexdigest() == result.detail["sha256"]
    assert len(sink.messages) == 1
    assert sink.messages[0].message["Message-ID"] == result.provider_ref
    assert list((tmp_path / "emails").iterdir()) == [
        tmp_path / "emails" / f"{intent.intent_id}.eml"
    ]
