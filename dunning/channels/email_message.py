"""Building collection emails: config, rendering, MIME structure, headers, wire bytes.

Kept apart from :mod:`dunning.channels.email` (which talks SMTP) so the letter channel and
tests can build a message without a server. A message is multipart/alternative (text + HTML),
wrapped in multipart/mixed when attachments are given; non-ASCII headers are RFC 2047 encoded
and non-ASCII attachment names RFC 2231 encoded by the standard library's ``email`` package.

``List-Unsubscribe`` is written by hand (:class:`_MailPolicy`): the stock policy turns a URL
longer than 78 characters into an encoded-word, which no mail client can follow.

Every text that goes into a header (the recipient's name and address, the rendered subject,
the sender's name) is checked by :func:`dunning.safe_text.text_problem` before it is set:
accounts are checked when the book is read, and this is the second line. Python's ``email``
package before 3.11.10/3.12.5 (CVE-2024-6923) writes an encoded word that hides CR LF as a raw
line break, so a name could otherwise add a ``Bcc:`` or a second body.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.generator import BytesGenerator
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from dunning.channels_toml import CHANNELS_TOML, load_channels_toml
from dunning.errors import ConfigError, PermanentChannelError
from dunning.intents import ContactIntent
from dunning.safe_text import NAME_MAX_CHARS, text_problem
from dunning.settings import Settings
from dunning.templates import TemplateStore, template_context

__all__ = [
    "Attachment",
    "EmailConfig",
    "RenderedEmail",
    "build_message",
    "load_email_config",
    "message_bytes",
    "render_email",
    "unsubscribe_token",
    "verify_unsubscribe_token",
]

Attachment = tuple[str, bytes, str]
"""(filename, content, MIME type such as ``application/pdf``)."""

_RAW_FOLDED = {"list-unsubscribe"}
_ADDRESS_MAX_CHARS = 254  # RFC 5321's limit on a path
_HEADER_MAX_CHARS = 998  # RFC 5322's limit on a line, before folding


class _MailPolicy(EmailPolicy):
    """SMTP policy (CRLF, 7-bit bodies) that folds List-Unsubscribe between its URIs only (it
    carries one: the line stays whole, well under the 998-character limit)."""

    def _raw(self, name: str, value: str) -> str:
        joined = str(value).replace(", ", "," + self.linesep + " ")
        return f"{name}: {joined}{self.linesep}"

    def fold(self, name: str, value: str) -> str:
        if name.lower() in _RAW_FOLDED:
            return self._raw(name, value)
        return str(super().fold(name, value))

    def fold_binary(self, name: str, value: str) -> bytes:
        if name.lower() in _RAW_FOLDED:
            return self._raw(name, value).encode("ascii")
        return super().fold_binary(name, value)


# 7bit: bodies go base64/quoted-printable, so any server takes them without 8BITMIME.
MAIL_POLICY = _MailPolicy(linesep="\r\n", cte_type="7bit")


@dataclass(frozen=True, slots=True)
class EmailConfig:
    """The ``[email]`` section of ``config/channels.toml`` plus the institution names.

    ``envelope_from`` may hold ``{intent_id}`` (VERP), so a bounce names the intent it is for.
    ``unsubscribe_url`` is the HTTPS endpoint of ``dunning webhook``; ``intent_id`` and an HMAC
    ``token`` are appended as the query. It is the only unsubscribe offered: no ``mailto:``,
    since nothing reads mail sent to an unsubscribe address.
    """

    from_address: str
    message_id_domain: str
    unsubscribe_url: str
    unsubscribe_secret: str
    from_names: Mapping[str, str] = field(default_factory=dict)
    contact_numbers: Mapping[str, str] = field(default_factory=dict)
    envelope_from: str = ""
    reply_to: str | None = None
    pool_size: int = 2
    probe_idle_s: float = 5.0

    def from_name(self, jurisdiction: str) -> str:
        """Display name for ``jurisdiction`` (``US-MA`` falls back to ``US``)."""
        found = self.from_names.get(jurisdiction) or self.from_names.get(jurisdiction[:2])
        if found is None:
            raise ConfigError(
                f"channels.toml: no sender name for {jurisdiction}: add"
                f" [institution.{jurisdiction}] name or [email.from_names] {jurisdiction}"
            )
        return found

    def sender(self, intent_id: str) -> str:
        """The envelope sender (MAIL FROM) of the intent's message."""
        template = self.envelope_from or self.from_address
        return template.replace("{intent_id}", intent_id)


def load_email_config(settings: Settings, path: Path | None = None) -> EmailConfig:
    """``[email]`` and the institutions of ``channels.toml`` (default: in the config folder)
    with the settings' webhook URL and unsubscribe secret; ConfigError when wrong."""
    file = path or settings.config_dir / CHANNELS_TOML
    section = load_channels_toml(file).email()
    return EmailConfig(
        from_address=section.from_address,
        message_id_domain=section.message_id_domain,
        unsubscribe_url=section.unsubscribe_url
        or f"{settings.webhook_public_url}/email/unsubscribe",
        unsubscribe_secret=settings.unsubscribe_secret,
        from_names=section.from_names,
        contact_numbers=section.contact_numbers,
        envelope_from=section.envelope_from,
        reply_to=section.reply_to,
        pool_size=section.pool_size,
        probe_idle_s=section.probe_idle_s,
    )


def unsubscribe_token(secret: str, intent_id: str) -> str:
    """HMAC-SHA256 of the intent id (32 hex): the unsubscribe link cannot be forged or guessed."""
    digest = hmac.new(secret.encode(), intent_id.encode(), hashlib.sha256).hexdigest()
    return digest[:32]


def verify_unsubscribe_token(secret: str, intent_id: str, token: str) -> bool:
    """True when ``token`` is the one :func:`unsubscribe_token` gives (constant-time compare);
    a non-ASCII token is False (``compare_digest`` takes only ASCII text)."""
    if not token.isascii():
        return False
    return hmac.compare_digest(unsubscribe_token(secret, intent_id).encode(), token.encode())


def unsubscribe_link(config: EmailConfig, intent_id: str) -> str:
    """The one-click HTTPS URL for ``List-Unsubscribe`` and the templates' opt-out line."""
    query = urlencode(
        {"intent_id": intent_id, "token": unsubscribe_token(config.unsubscribe_secret, intent_id)}
    )
    return f"{config.unsubscribe_url}?{query}"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(
    store: TemplateStore,
    config: EmailConfig,
    intent: ContactIntent,
    extra: Mapping[str, Any] | None = None,
) -> RenderedEmail:
    """Render the subject, text and HTML parts of the intent's email template.

    Templates see :func:`template_context` plus ``institution``, ``callback_number`` and
    ``unsubscribe_url``. Raises ConfigError on template faults.
    """
    url = unsubscribe_link(config, intent.intent_id)
    j = intent.jurisdiction
    context = template_context(
        intent,
        {
            "institution": config.from_name(j),
            "callback_number": config.contact_numbers.get(j)
            or config.contact_numbers.get(j[:2], ""),
            "unsubscribe_url": url,
            **(extra or {}),
        },
    )
    locale, name = intent.template.locale, intent.template.name
    subject = store.render(locale, "email", name, "subject", context)
    return RenderedEmail(
        subject=" ".join(subject.split()),  # a newline in a Subject would end the header
        text=store.render(locale, "email", name, "txt", context),
        html=store.render(locale, "email", name, "html", context),
    )


def _header_text(value: str, what: str, max_chars: int = _HEADER_MAX_CHARS) -> str:
    """``value`` when it is safe to put into a header; PermanentChannelError otherwise.

    The reason names ``what`` and the problem, never the value (it may be personal data), so
    the same fault of two people dead-letters with the same reason.
    """
    problem = text_problem(value, max_chars=max_chars)
    if problem is not None:
        raise PermanentChannelError(
            f"{what} {problem}; refused as header text", provider_code="unsafe_header"
        )
    return value


def _address(text: str, display_name: str = "") -> Address:
    local, _, domain = text.rpartition("@")
    if not local or not domain:
        raise PermanentChannelError(f"malformed email address in domain {domain or '?'}")
    return Address(display_name=display_name, username=local, domain=domain)


def build_message(
    config: EmailConfig,
    intent: ContactIntent,
    rendered: RenderedEmail,
    *,
    sent_at: datetime,
    attachments: Sequence[Attachment] = (),
) -> EmailMessage:
    """The complete message for ``intent``; Message-ID is ``<{intent_id}@{message_id_domain}>``.

    Raises PermanentChannelError when the intent has no usable email address.
    """
    if not intent.recipient.email:
        raise PermanentChannelError("recipient has no email address", provider_code="no_email")
    sender_name = _header_text(config.from_name(intent.jurisdiction), "sender name")
    name = _header_text(intent.recipient.name, "recipient name", NAME_MAX_CHARS)
    email = _header_text(intent.recipient.email, "recipient address", _ADDRESS_MAX_CHARS)
    msg = EmailMessage(policy=MAIL_POLICY)
    msg["From"] = _address(_header_text(config.from_address, "sender address"), sender_name)
    msg["To"] = _address(email, name)
    if config.reply_to:
        msg["Reply-To"] = _header_text(config.reply_to, "reply-to address")
    msg["Subject"] = _header_text(rendered.subject, "subject")
    msg["Date"] = format_datetime(sent_at)
    msg["Message-ID"] = f"<{intent.intent_id}@{config.message_id_domain}>"
    msg["List-Unsubscribe"] = f"<{unsubscribe_link(config, intent.intent_id)}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"  # RFC 8058
    msg["X-Dunning-Intent"] = intent.intent_id  # bounces quote headers: find the intent back
    msg.set_content(rendered.text + "\n")
    msg.add_alternative(rendered.html + "\n", subtype="html")
    for filename, content, mime_type in attachments:
        maintype, _, subtype = mime_type.partition("/")
        if not subtype:
            raise ValueError(f"attachment MIME type {mime_type!r} is not type/subtype")
        msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def message_bytes(message: EmailMessage) -> bytes:
    """The message as sent on the wire (CRLF, 7-bit, our List-Unsubscribe folding)."""
    out = io.BytesIO()
    BytesGenerator(out, policy=MAIL_POLICY).flatten(message)
    return out.getvalue()
