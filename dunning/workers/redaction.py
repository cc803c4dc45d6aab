"""Failure reasons without personal data: what dead-letter headers, ``last_error`` and the
outcome log carry.

Adapters build their reasons from codes and fixed words (``invalid 'To' number``, ``recipient
refused: 550 5.1.1``), never from the provider's sentence, so ``dunning dlq list`` groups the
same failure of different people under one reason. Text an adapter did not write (a template
error, an unexpected exception) still passes through here: the intent's own name, phone (in
any spelling), email and address lines become ``<name>``, ``<phone>``, ``<email>``,
``<address>``, and anything else that looks like a number or an address is masked.
"""

from __future__ import annotations

from dunning.intents import ContactIntent
from dunning.logs import PersonalData, mask_text

__all__ = ["personal_data", "scrub_reason"]


def personal_data(intent: ContactIntent) -> PersonalData:
    """The values of the intent's recipient that must not leave the worker in a reason or log."""
    recipient = intent.recipient
    address = recipient.postal_address
    return PersonalData(
        name=recipient.name,
        phone=recipient.phone,
        email=recipient.email,
        address_lines=address.lines if address is not None else (),
    )


def scrub_reason(text: str, intent: ContactIntent | None) -> str:
    """``text`` fit for a dead-letter header, the ledger's ``last_error`` and the logs."""
    return personal_data(intent).scrub(text) if intent is not None else mask_text(text)
