"""A lawyer letter for a debtor without a postal address goes out by email, PDF attached."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

from dunning.channels.registry import build_adapter
from dunning.intents import Channel, Recipient
from dunning.sandbox.smtp_sink import SmtpSink
from dunning.settings import Settings
from tests.factories import make_intent


async def test_letter_is_emailed_with_the_pdf_attached(tmp_path: Path) -> None:
    async with SmtpSink() as sink:
        settings = Settings(
            smtp_host=sink.host, smtp_port=sink.port, letter_outbox=tmp_path / "outbox"
        )
        channel = build_adapter(Channel.LETTER, settings)
        intent = make_intent(Channel.LETTER)
        intent = dataclasses.replace(
            intent,
            template=dataclasses.replace(intent.template, name="lawyer_letter"),
            recipient=Recipient(name="张三", email="zhang.san@example.com"),
        )
        try:
            result = await channel.send(intent, attempt=1)
        finally:
            await channel.aclose()
        await sink.wait_for(1, timeout_s=10)

    message = sink.messages[0].message
    attachments = list(message.iter_attachments())
    assert [a.get_filename() for a in attachments] == [f"{intent.intent_id}.pdf"]
    pdf = attachments[0].get_content()
    assert pdf.startswith(b"%PDF")
    assert result.provider_ref == message["Message-ID"]
    assert result.detail["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert list(sink.messages[0].rcpt_tos) == ["zhang.san@example.com"]
    assert not (tmp_path / "outbox").exists() or not any((tmp_path / "outbox").iterdir())
