"""The letter channel: render a lawyer letter PDF and hand it to the print vendor's outbox.

Per intent: find the jurisdiction's law-firm engagement (none: permanent
``no_law_firm_engagement``), compose the text from ``config/templates/<locale>/letter/``, render
the PDF off the event loop (one render thread by default, or a process pool: ``render_processes``
in ``[letter]``), then write ``<intent_id>.pdf`` and ``<intent_id>.json`` (the manifest) into
``Settings.letter_outbox``.

Outbox protocol for the vendor: files appear atomically (temp name starting with ``.`` in the same
folder, fsync, rename); the manifest is written last and is the commit marker: a PDF without its
manifest was never handed over and may be replaced. The manifest holds the postal address (the
vendor's instruction), so it is never logged. Sends are idempotent: when the manifest exists the
adapter writes nothing and returns the recorded reference and facts.

Email dispatch is a hook: pass a :class:`LetterMailer` (the email channel) and a letter whose
recipient has no postal address goes out as an attachment instead.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import structlog
from reportlab.platypus.doctemplate import LayoutError

from dunning.channels.base import SendResult
from dunning.channels.letter.fonts import CjkFont, find_cjk_font, font_search_paths, register_font
from dunning.channels.letter.law_firms import LawFirms
from dunning.channels.letter.pdf import (
    PAGE_SIZES_PT,
    LetterDocument,
    RenderedLetter,
    compose_letter,
    render_letter,
)
from dunning.channels_toml import CHANNELS_TOML, load_channels_toml
from dunning.clock import Clock
from dunning.errors import ConfigError, PermanentChannelError, TransientChannelError
from dunning.intents import Channel, ContactIntent
from dunning.settings import Settings
from dunning.templates import TemplateStore

__all__ = ["LetterChannel", "LetterMailer", "Outbox"]

log = structlog.get_logger(__name__)

MANIFEST_SCHEMA = "dunning.letter/1"


class LetterMailer(Protocol):
    """Email dispatch of a rendered letter (implemented by the email channel)."""

    async def send_letter(self, intent: ContactIntent, pdf: bytes, file_name: str) -> str:
        """Email ``pdf`` to the intent's recipient; returns the Message-ID."""
        ...


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Outbox:
    """The print vendor's drop folder: one ``<intent_id>.pdf`` + ``<intent_id>.json`` per letter."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def pdf_path(self, intent_id: str) -> Path:
        return self.folder / f"{intent_id}.pdf"

    def manifest_path(self, intent_id: str) -> Path:
        return self.folder / f"{intent_id}.json"

    def existing(self, intent_id: str) -> dict[str, Any] | None:
        """The manifest of an already dispatched letter, or None."""
        try:
            data: dict[str, Any] = json.loads(self.manifest_path(intent_id).read_text("utf-8"))
        except FileNotFoundError:
            return None
        return data

    def _write_atomic(self, final: Path, data: bytes, *, replace: bool) -> bool:
        """Write ``data`` under a temp name, fsync, move to ``final``; False if it existed.

        ``replace=False`` uses a hard link, which fails rather than overwrite a file another
        process placed first (falls back to rename on file systems without hard links).
        """
        tmp = self.folder / f".{final.name}.{uuid.uuid4().hex}.tmp"
        with tmp.open("xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            if replace:
                os.replace(tmp, final)
                return True
            try:
                os.link(tmp, final)
            except FileExistsError:
                return False
            except OSError:
                if final.exists():
                    return False
                os.replace(tmp, final)
            return True
        finally:
            tmp.unlink(missing_ok=True)
            _fsync_dir(self.folder)

    def write(
        self, intent: ContactIntent, letter: RenderedLetter, doc: LetterDocument, at: datetime
    ) -> dict[str, Any]:
        """Place the PDF, then the manifest; returns the manifest that is in the outbox."""
        self.folder.mkdir(parents=True, exist_ok=True)
        address = intent.recipient.postal_address
        assert address is not None  # compose_letter refused letters without one
        width_pt, height_pt = PAGE_SIZES_PT[letter.page_size]
        manifest = {
            "schema": MANIFEST_SCHEMA,
            "intent_id": intent.intent_id,
            "file": self.pdf_path(intent.intent_id).name,
            "file_number": doc.file_number,
            "jurisdiction": intent.jurisdiction,
            "recipient": {
                "name": intent.recipient.name,
                "postal_address": {
                    "lines": list(address.lines),
                    "city": address.city,
                    "region": address.region,
                    "postal_code": address.postal_code,
                    "country": address.country,
                },
            },
            "pages": letter.pages,
            "sha256": letter.sha256,
            "bytes": len(letter.pdf),
            "page_size": letter.page_size,
            "page_size_pt": [round(width_pt), round(height_pt)],
            "created_at": at.isoformat(),
        }
        # A PDF without a manifest was never handed over (a crash between the two writes).
        self._write_atomic(self.pdf_path(intent.intent_id), letter.pdf, replace=True)
        body = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True).encode()
        if not self._write_atomic(self.manifest_path(intent.intent_id), body, replace=False):
            placed = self.existing(intent.intent_id)
            assert placed is not None  # the link failed because the manifest exists
            return placed
        return manifest


def _result(manifest: Mapping[str, Any]) -> SendResult:
    return SendResult(
        provider_ref=str(manifest["file"]),
        status="dispatched",
        detail={
            "sha256": str(manifest["sha256"]),
            "pages": int(manifest["pages"]),
            "bytes": int(manifest["bytes"]),
        },
    )


def _make_executor(font: CjkFont, render_processes: int) -> Executor:
    if render_processes == 0:
        # One thread: keeps the event loop free; reportlab's font registry is process-global,
        # so renders are serialised rather than racing on it.
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="letter-render")
    # spawn, not fork: forking a process that runs an event loop and threads is unsafe.
    return ProcessPoolExecutor(
        max_workers=render_processes,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=register_font,
        initargs=(font,),
    )


class LetterChannel:
    """Lawyer letters as PDFs in the print vendor's outbox (ChannelAdapter)."""

    channel = Channel.LETTER

    def __init__(
        self,
        *,
        outbox: Path,
        law_firms: LawFirms,
        templates: TemplateStore,
        font: CjkFont,
        clock: Clock,
        render_processes: int = 0,
        mailer: LetterMailer | None = None,
    ) -> None:
        register_font(font)  # fail at start-up, not on the first letter
        self._outbox = Outbox(outbox)
        self._law_firms = law_firms
        self._templates = templates
        self._font = font
        self._clock = clock
        self._mailer = mailer
        self._executor = _make_executor(font, render_processes)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        font_paths: Sequence[Path] | None = None,
        mailer: LetterMailer | None = None,
    ) -> LetterChannel:
        """Build from settings and ``[letter]`` in channels.toml.

        ``font_paths`` replaces the font search (default: ``font_path`` from config, else the
        bundled font). Raises ConfigError when no CJK font, engagement file or template folder is
        usable: the letter worker refuses to start rather than print blank letters.
        """
        config = load_channels_toml(settings.config_dir / CHANNELS_TOML, missing_ok=True).letter()
        if font_paths is None:
            font_paths = font_search_paths(config.font_path)
        return cls(
            outbox=settings.letter_outbox,
            law_firms=LawFirms.load(config.law_firms),
            templates=TemplateStore(config.templates),
            font=find_cjk_font(font_paths),
            clock=settings.clock(),
            render_processes=config.render_processes,
            mailer=mailer,
        )

    async def send(self, intent: ContactIntent, *, attempt: int) -> SendResult:
        """Render and dispatch the letter; a second send of the same intent writes nothing."""
        bound = log.bind(intent_id=intent.intent_id, attempt=attempt)
        try:
            placed = await asyncio.to_thread(self._outbox.existing, intent.intent_id)
        except OSError as exc:
            raise TransientChannelError(f"outbox_unreadable: {exc.strerror}") from exc
        except ValueError as exc:  # json.JSONDecodeError: only a hand-edited manifest gets here
            raise PermanentChannelError("outbox_manifest_corrupt") from exc
        if placed is not None:
            bound.info("letter_already_dispatched", sha256=placed["sha256"])
            return _result(placed)
        engagement = self._law_firms.for_jurisdiction(intent.jurisdiction)
        if intent.recipient.postal_address is None and self._mailer is None:
            raise PermanentChannelError("no_postal_address", provider_code="no_postal_address")
        now = self._clock.now()
        try:
            doc = compose_letter(
                intent, engagement, self._templates, letter_date=now.astimezone(intent.zone).date()
            )
        except ConfigError as exc:
            raise PermanentChannelError(f"letter_template: {exc}") from exc
        letter = await self._render(doc)
        if intent.recipient.postal_address is None:
            return await self._send_by_email(intent, letter, self._mailer)
        try:
            manifest = await asyncio.to_thread(self._outbox.write, intent, letter, doc, now)
        except OSError as exc:
            raise TransientChannelError(f"outbox_write_failed: {exc.strerror}") from exc
        bound.info(
            "letter_dispatched",
            file_number=doc.file_number,
            pages=letter.pages,
            bytes=len(letter.pdf),
            sha256=letter.sha256,
        )
        return _result(manifest)

    async def _render(self, doc: LetterDocument) -> RenderedLetter:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, render_letter, doc, self._font)
        except BrokenProcessPool as exc:
            raise TransientChannelError("letter_renderer_crashed") from exc
        except LayoutError as exc:  # e.g. a text block taller than a page: the template's fault
            raise PermanentChannelError(f"letter_layout: {exc}") from exc
        except OSError as exc:  # signature or seal image unreadable (a mount went away)
            raise TransientChannelError(f"letter_assets_unreadable: {exc.strerror}") from exc

    async def _send_by_email(
        self, intent: ContactIntent, letter: RenderedLetter, mailer: LetterMailer | None
    ) -> SendResult:
        """The email hook: the mailer (email channel) attaches the PDF and raises ChannelErrors."""
        assert mailer is not None  # send() refused letters with neither address nor mailer
        if intent.recipient.email is None:
            raise PermanentChannelError("no_postal_address", provider_code="no_postal_address")
        message_id = await mailer.send_letter(intent, letter.pdf, f"{intent.intent_id}.pdf")
        log.info("letter_emailed", intent_id=intent.intent_id, sha256=letter.sha256)
        return SendResult(
            provider_ref=message_id,
            status="accepted",
            detail={"sha256": letter.sha256, "pages": letter.pages, "bytes": len(letter.pdf)},
        )

    async def aclose(self) -> None:
        """Stop the render pool after letters in progress finish; close the mailer's connections."""
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        closer = getattr(self._mailer, "aclose", None)
        if closer is not None:
            await closer()
