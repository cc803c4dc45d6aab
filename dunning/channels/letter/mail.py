"""Lawyer letters by email: the rendered PDF attached to the ``letter_cover`` email template.

Used by the letter channel for debtors with an email address but no postal address. The email
goes through the same EmailChannel (pooled SMTP, deterministic Message-ID, List-Unsubscribe),
so its failures classify exactly like any other email's.
"""

from __future__ import annotations

import dataclasses

from dunning.channels.email import EmailChannel
from dunning.intents import Channel, ContactIntent, TemplateRef

__all__ = ["COVER_TEMPLATE", "EmailLetterMailer"]

COVER_TEMPLATE = "letter_cover"


class EmailLetterMailer:
    def __init__(self, email: EmailChannel) -> None:
        self._email = email

    async def send_letter(self, intent: ContactIntent, pdf: bytes, file_name: str) -> str:
        """Email ``pdf`` to the intent's recipient; returns the Message-ID."""
        cover = dataclasses.replace(
            intent,
            channel=Channel.EMAIL,
            template=TemplateRef(COVER_TEMPLATE, intent.template.locale),
        )
        result = await self._email.send(
            cover, attempt=1, attachments=[(file_name, pdf, "application/pdf")]
        )
        return result.provider_ref

    async def aclose(self) -> None:
        await self._email.aclose()
