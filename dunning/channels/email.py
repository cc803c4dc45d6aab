"""Email through SMTP (aiosmtplib) with a small pool of reused connections.

Each pooled connection is one ``aiosmtplib.SMTP`` checked out by one send at a time, so N
connections carry N concurrent sends. A connection is opened lazily, reopened when the server
has closed it, and probed with NOOP when it sat idle longer than ``probe_idle_s`` (servers drop
idle clients; finding out at MAIL FROM would cost the send a retry).

A disconnect in the middle of a transaction is *not* retried here: the server may already have
accepted the message, and the worker's retry ladder and ledger decide what happens next.

Reply codes: 4xx → TransientChannelError, 5xx → PermanentChannelError, both with the code in
``provider_code``; timeouts and connection failures → TransientChannelError. Reasons hold the
reply code and its enhanced status code (``recipient refused: 550 5.1.1``) but not the reply
text, which servers fill with the recipient's address. A rejected login
is transient too: it is our account that is wrong, not the recipient, so intents must not be
dead-lettered while an operator fixes the password.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import structlog

from dunning.channels.base import SendResult
from dunning.channels.email_message import (
    Attachment,
    EmailConfig,
    build_message,
    load_email_config,
    message_bytes,
    render_email,
)
from dunning.clock import Clock, SystemClock
from dunning.errors import ChannelError, PermanentChannelError, TransientChannelError
from dunning.intents import Channel, ContactIntent
from dunning.settings import Settings
from dunning.templates import TemplateStore

__all__ = ["EmailChannel", "SmtpOptions", "classify_smtp_error"]

log = structlog.get_logger(__name__)


@dataclass
class SmtpOptions:
    """How to reach the SMTP server (from :class:`Settings` ``smtp_*``)."""

    host: str
    port: int
    _: KW_ONLY
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    implicit_tls: bool = False
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpOptions:
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            implicit_tls=settings.smtp_tls,
            timeout_s=settings.smtp_timeout_s,
        )

    def client(self) -> aiosmtplib.SMTP:
        return aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.implicit_tls,
            # Explicit: never opportunistic, so a plain-text setting is never silently upgraded
            # to a TLS handshake the server's certificate may fail.
            start_tls=self.starttls,
            timeout=self.timeout_s,
        )


# 530 auth required, 534 mechanism too weak, 535 bad credentials, 538 encryption required:
# our account is misconfigured, the recipient is fine (see the module docstring).
_AUTH_CODES = frozenset({530, 534, 535, 538})
# RFC 3463 enhanced status code at the start of a reply text: class.subject.detail.
_ENHANCED_STATUS = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})\b")


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    """``550 5.1.1``: the reply code and enhanced status code, without the server's text."""
    enhanced = _ENHANCED_STATUS.match(exc.message or "")
    return f"{exc.code} {enhanced.group(1)}" if enhanced else str(exc.code)


def classify_smtp_error(exc: BaseException) -> ChannelError:
    """Translate an aiosmtplib or socket failure into a dunning channel error."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        exc = exc.recipients[0]
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError) or (
        isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code in _AUTH_CODES
    ):
        return TransientChannelError(
            f"SMTP login missing or rejected: {_reply(exc)}", provider_code=str(exc.code)
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        stage = {
            aiosmtplib.SMTPRecipientRefused: "recipient refused",
            aiosmtplib.SMTPSenderRefused: "sender refused",
            aiosmtplib.SMTPDataError: "message refused",
        }.get(type(exc), "SMTP error")
        reason = f"{stage}: {_reply(exc)}"
        if 400 <= exc.code < 500:
            return TransientChannelError(reason, provider_code=str(exc.code))
        if 500 <= exc.code < 600:
            return PermanentChannelError(reason, provider_code=str(exc.code))
        return TransientChannelError(reason, provider_code=str(exc.code))
    if isinstance(exc, aiosmtplib.SMTPNotSupported):
        return PermanentChannelError(f"SMTP server cannot carry this message: {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPConnectError):
        # No session was opened, so no message was handed over.
        return TransientChannelError(f"SMTP connection failed: {exc}", before_provider=True)
    # A timeout or a drop after DATA was written may follow an accepted message.
    if isinstance(exc, aiosmtplib.SMTPTimeoutError | TimeoutError):
        return TransientChannelError(f"SMTP timeout: {exc}", ambiguous=True)
    if isinstance(exc, aiosmtplib.SMTPServerDisconnected):
        return TransientChannelError(f"SMTP server disconnected: {exc}", ambiguous=True)
    if isinstance(exc, OSError):
        return TransientChannelError(f"SMTP connection failed: {exc}")
    return TransientChannelError(f"SMTP failure: {type(exc).__name__}")


def _session_survives(exc: BaseException) -> bool:
    """True when the server refused one transaction (aiosmtplib sent RSET) and stays usable.

    421 means the server is closing the channel; anything that is not a reply (timeout,
    disconnect, socket error) leaves the session in an unknown state.
    """
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(r.code != 421 for r in exc.recipients)
    return isinstance(exc, aiosmtplib.SMTPResponseException) and exc.code != 421


class _Connection:
    """One pooled SMTP client and when it was last used (monotonic seconds)."""

    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self.client = client
        self.last_used_s = 0.0
        self.opened = 0


class EmailChannel:
    """The email ChannelAdapter: renders, builds and sends one message per intent."""

    channel = Channel.EMAIL

    def __init__(
        self,
        smtp: SmtpOptions,
        config: EmailConfig,
        templates: TemplateStore,
        *,
        clock: Clock | None = None,
        archive: Path | None = None,
    ) -> None:
        self.smtp = smtp
        self.config = config
        self.templates = templates
        self._clock = clock or SystemClock()
        self._archive = archive
        self._all = [_Connection(smtp.client()) for _ in range(config.pool_size)]
        self._idle: asyncio.Queue[_Connection] = asyncio.Queue()
        for conn in self._all:
            self._idle.put_nowait(conn)
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock | None = None) -> EmailChannel:
        """Build from ``DUNNING_SMTP_*``, ``channels.toml`` [email] and the template folder."""
        return cls(
            SmtpOptions.from_settings(settings),
            load_email_config(settings),
            TemplateStore(settings.config_dir / "templates"),
            clock=clock or settings.clock(),
            archive=settings.email_archive,
        )

    @property
    def connections_opened(self) -> int:
        """How many SMTP connections this channel has opened so far (pool health figure)."""
        return sum(conn.opened for conn in self._all)

    def build_message(
        self, intent: ContactIntent, *, attachments: Sequence[Attachment] = ()
    ) -> EmailMessage:
        """Render the intent's email template into a ready message (PDF letters attach here)."""
        rendered = render_email(self.templates, self.config, intent)
        return build_message(
            self.config, intent, rendered, sent_at=self._clock.now(), attachments=attachments
        )

    async def send(
        self, intent: ContactIntent, *, attempt: int, attachments: Sequence[Attachment] = ()
    ) -> SendResult:
        """Send the intent's email once; ``attachments`` are (filename, bytes, MIME type)."""
        message = self.build_message(intent, attachments=attachments)
        result = await self.send_message(message, sender=self.config.sender(intent.intent_id))
        if self._archive is not None:
            await asyncio.to_thread(self._keep, intent.intent_id, message_bytes(message))
        log.info(
            "email.sent",
            intent_id=intent.intent_id,
            attempt=attempt,
            message_id=result.provider_ref,
            attachments=len(attachments),
        )
        return result

    def _keep(self, intent_id: str, raw: bytes) -> None:
        """Keep the message as sent; it went out already, so a failure here is only logged
        (its SHA-256 is in the ledger either way)."""
        assert self._archive is not None
        try:
            self._archive.mkdir(parents=True, exist_ok=True)
            partial = self._archive / f".{intent_id}.eml.partial"
            partial.write_bytes(raw)
            partial.replace(self._archive / f"{intent_id}.eml")
        except OSError as exc:
            log.warning("email.archive_failed", intent_id=intent_id, error=exc.strerror)

    async def send_message(self, message: EmailMessage, *, sender: str | None = None) -> SendResult:
        """Send a built message to its ``To`` address over a pooled connection.

        ``sender`` is the envelope MAIL FROM (default: the From address). Returns
        SendResult(provider_ref=<Message-ID>, status="accepted"); raises ChannelError subtypes.
        """
        if self._closed:
            raise TransientChannelError("email channel is closed")
        to = message["To"].addresses[0].addr_spec
        raw = message_bytes(message)
        conn = await self._idle.get()
        try:
            client = await self._ready(conn)
            await client.sendmail(sender or self.config.from_address, [to], raw)
        except (aiosmtplib.SMTPException, OSError) as exc:
            if not _session_survives(exc):
                conn.client.close()  # the next send on this connection reconnects
            raise classify_smtp_error(exc) from exc
        finally:
            conn.last_used_s = time.monotonic()
            self._idle.put_nowait(conn)
        return SendResult(
            provider_ref=str(message["Message-ID"]),
            status="accepted",
            # The hash of the message as sent: the evidence a legal handover checks against.
            detail={"bytes": len(raw), "sha256": hashlib.sha256(raw).hexdigest()},
        )

    async def _ready(self, conn: _Connection) -> aiosmtplib.SMTP:
        """A connected, authenticated client: reconnects after a drop, probes after idling."""
        client = conn.client
        if client.is_connected and time.monotonic() - conn.last_used_s >= self.config.probe_idle_s:
            try:
                await client.noop()
            except aiosmtplib.SMTPException:
                client.close()
        if not client.is_connected:
            await client.connect()
            conn.opened += 1
            log.debug("email.connected", host=self.smtp.host, port=self.smtp.port)
        return client

    async def aclose(self) -> None:
        """QUIT every open connection; errors while closing are logged, not raised."""
        self._closed = True
        for conn in self._all:
            if not conn.client.is_connected:
                continue
            try:
                await conn.client.quit()
            except (aiosmtplib.SMTPException, OSError) as exc:
                log.debug("email.quit_failed", error=type(exc).__name__)
                conn.client.close()
