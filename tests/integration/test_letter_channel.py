"""LetterChannel end to end: render, dispatch to a real outbox folder, idempotency, refusals."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import structlog

from dunning.channels.base import ChannelAdapter
from dunning.channels.letter.channel import LetterChannel
from dunning.errors import ConfigError, PermanentChannelError, TransientChannelError
from dunning.intents import Channel, ContactIntent, PostalAddress, Recipient, TemplateRef
from dunning.settings import Settings
from tests import pdfcheck
from tests.factories import make_intent

CONFIG = Path(__file__).resolve().parents[2] / "config"
NOW = datetime.fromisoformat("2026-11-28T10:00:00+08:00")


def letter_intent(jurisdiction: str = "CN", **overrides: object) -> ContactIntent:
    intent = make_intent(Channel.LETTER, jurisdiction=jurisdiction)
    intent = dataclasses.replace(
        intent, template=TemplateRef("lawyer_letter", intent.template.locale)
    )
    if jurisdiction.startswith("US"):
        address = PostalAddress(("12 Elm Street",), "Boston", "02108", "US", region="MA")
        intent = dataclasses.replace(
            intent, recipient=Recipient(name="Jane Doe", postal_address=address)
        )
    return dataclasses.replace(intent, **overrides)


def _settings(outbox: Path, config_dir: Path = CONFIG) -> Settings:
    return Settings(config_dir=config_dir, letter_outbox=outbox, now=NOW)


def _channel(settings: Settings) -> LetterChannel:
    try:
        return LetterChannel.from_settings(settings)
    except ConfigError as exc:
        if os.environ.get("CI") == "true" or "font" not in str(exc):
            raise
        pytest.skip(str(exc))


@pytest.fixture
async def channel(tmp_path: Path) -> AsyncIterator[LetterChannel]:
    adapter = _channel(_settings(tmp_path / "outbox"))
    yield adapter
    await adapter.aclose()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_is_a_channel_adapter(channel: LetterChannel) -> None:
    adapter: ChannelAdapter = channel
    assert adapter.channel is Channel.LETTER


async def test_send_writes_one_pdf_and_its_manifest(channel: LetterChannel, tmp_path: Path) -> None:
    intent = letter_intent("CN")
    result = await channel.send(intent, attempt=1)

    outbox = tmp_path / "outbox"
    assert _files(outbox) == sorted([f"{intent.intent_id}.json", f"{intent.intent_id}.pdf"])
    pdf = (outbox / f"{intent.intent_id}.pdf").read_bytes()
    manifest = json.loads((outbox / f"{intent.intent_id}.json").read_text("utf-8"))
    assert manifest["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert manifest["bytes"] == len(pdf)
    assert manifest["intent_id"] == intent.intent_id
    assert manifest["page_size"] == "A4"
    assert manifest["page_size_pt"] == [595, 842]
    assert manifest["recipient"]["postal_address"]["postal_code"] == "200120"
    assert datetime.fromisoformat(manifest["created_at"]) >= NOW
    assert pdf.startswith(b"%PDF-")

    assert result.provider_ref == f"{intent.intent_id}.pdf"
    assert result.status == "dispatched"
    assert result.detail == {
        "sha256": manifest["sha256"],
        "pages": manifest["pages"],
        "bytes": len(pdf),
    }
    assert pdfcheck.page_count(pdf) == manifest["pages"]
    assert all(f.embedded for f in pdfcheck.fonts(pdf))


async def test_second_send_writes_nothing_and_returns_the_same_reference(
    channel: LetterChannel, tmp_path: Path
) -> None:
    intent = letter_intent("US")
    first = await channel.send(intent, attempt=1)
    outbox = tmp_path / "outbox"
    before = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in outbox.iterdir()}

    second = await channel.send(intent, attempt=2)

    after = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in outbox.iterdir()}
    assert after == before
    assert second == first
    assert first.detail["pages"] >= 1


async def test_orphan_pdf_without_manifest_is_replaced(
    channel: LetterChannel, tmp_path: Path
) -> None:
    # A crash between the two writes leaves a PDF the vendor never saw.
    intent = letter_intent("CN")
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / f"{intent.intent_id}.pdf").write_bytes(b"partial")

    result = await channel.send(intent, attempt=2)

    pdf = (outbox / f"{intent.intent_id}.pdf").read_bytes()
    assert hashlib.sha256(pdf).hexdigest() == result.detail["sha256"]
    assert _files(outbox) == sorted([f"{intent.intent_id}.json", f"{intent.intent_id}.pdf"])


async def test_jurisdiction_without_engagement_is_refused(
    channel: LetterChannel, tmp_path: Path
) -> None:
    intent = dataclasses.replace(letter_intent("CN"), jurisdiction="UK")
    with pytest.raises(PermanentChannelError) as caught:
        await channel.send(intent, attempt=1)
    assert caught.value.reason == "no_law_firm_engagement"
    assert caught.value.provider_code == "no_law_firm_engagement"
    outbox = tmp_path / "outbox"
    assert not outbox.exists() or _files(outbox) == []


async def test_recipient_without_postal_address_is_refused(channel: LetterChannel) -> None:
    intent = letter_intent("CN")
    intent = dataclasses.replace(
        intent, recipient=Recipient(name="张三", email="zhang.san@example.com")
    )
    with pytest.raises(PermanentChannelError) as caught:
        await channel.send(intent, attempt=1)
    assert caught.value.reason == "no_postal_address"


class RecordingMailer:
    """Stands in for the email channel behind the LetterMailer hook."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, str]] = []

    async def send_letter(self, intent: ContactIntent, pdf: bytes, file_name: str) -> str:
        self.sent.append((intent.intent_id, pdf, file_name))
        return f"<{intent.intent_id}@mail.example.com>"


async def test_mailer_hook_emails_letters_without_postal_address(tmp_path: Path) -> None:
    mailer = RecordingMailer()
    try:
        adapter = LetterChannel.from_settings(_settings(tmp_path / "outbox"), mailer=mailer)
    except ConfigError as exc:
        pytest.skip(str(exc))
    intent = letter_intent("CN")
    intent = dataclasses.replace(
        intent, recipient=Recipient(name="张三", email="zhang.san@example.com")
    )
    try:
        result = await adapter.send(intent, attempt=1)
    finally:
        await adapter.aclose()
    [(intent_id, pdf, file_name)] = mailer.sent
    assert intent_id == intent.intent_id
    assert file_name == f"{intent.intent_id}.pdf"
    assert result.provider_ref == f"<{intent.intent_id}@mail.example.com>"
    assert result.detail["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert not (tmp_path / "outbox").exists()


def test_no_cjk_font_refuses_to_start(tmp_path: Path) -> None:
    empty = tmp_path / "fonts"
    empty.mkdir()
    with pytest.raises(ConfigError, match="fonts-wqy-microhei"):
        LetterChannel.from_settings(_settings(tmp_path / "outbox"), font_paths=[empty])


def test_font_path_from_config_is_used(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    empty = tmp_path / "no-fonts"
    empty.mkdir()
    (config / "channels.toml").write_text(
        f'[letter]\nlaw_firms = "{CONFIG / "law_firms.toml"}"\n'
        f'templates = "{CONFIG / "templates"}"\nfont_path = "{empty}"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="no CJK TrueType font"):
        LetterChannel.from_settings(_settings(tmp_path / "outbox", config))


async def test_logs_carry_no_postal_address_or_name(channel: LetterChannel) -> None:
    intent = letter_intent("CN")
    with structlog.testing.capture_logs() as logs:
        await channel.send(intent, attempt=1)
    assert any(entry["event"] == "letter_dispatched" for entry in logs)
    dumped = json.dumps(logs, ensure_ascii=False, default=str)
    for secret in ("张三", "浦东新区", "200120"):
        assert secret not in dumped


async def test_process_pool_renders_the_same_letter(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "channels.toml").write_text(
        f'[letter]\nlaw_firms = "{CONFIG / "law_firms.toml"}"\n'
        f'templates = "{CONFIG / "templates"}"\nrender_processes = 2\n',
        encoding="utf-8",
    )
    intent = letter_intent("CN")
    pooled = _channel(_settings(tmp_path / "pooled", config))
    threaded = _channel(_settings(tmp_path / "threaded"))
    try:
        from_pool = await pooled.send(intent, attempt=1)
        from_thread = await threaded.send(intent, attempt=1)
    finally:
        await pooled.aclose()
        await threaded.aclose()
    # Same intent, same day, reproducible rendering: byte-identical letters.
    assert from_pool.detail == from_thread.detail


async def test_corrupt_manifest_is_a_permanent_error(
    channel: LetterChannel, tmp_path: Path
) -> None:
    intent = letter_intent("CN")
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / f"{intent.intent_id}.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(PermanentChannelError) as caught:
        await channel.send(intent, attempt=1)
    assert caught.value.reason == "outbox_manifest_corrupt"
    assert not (outbox / f"{intent.intent_id}.pdf").exists()


async def test_unreadable_seal_image_is_transient(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    shutil.copy(CONFIG / "law_firms.toml", config / "law_firms.toml")
    shutil.copytree(CONFIG / "assets", config / "assets")
    (config / "channels.toml").write_text(
        f'[letter]\ntemplates = "{CONFIG / "templates"}"\n', encoding="utf-8"
    )
    adapter = _channel(_settings(tmp_path / "outbox", config))
    (config / "assets" / "seal.png").unlink()  # the firm's asset share went away after start-up
    try:
        with pytest.raises(TransientChannelError, match="letter_assets_unreadable"):
            await adapter.send(letter_intent("CN"), attempt=1)
    finally:
        await adapter.aclose()
    assert not (tmp_path / "outbox").exists()
