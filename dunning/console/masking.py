"""Personal data as a role without SEE_PII sees it: phone numbers and emails masked the way
the logs mask them, a name cut to its initial, a postal address hidden."""

from __future__ import annotations

from typing import Any

from dunning.logs import mask_email, mask_phone, mask_text

__all__ = ["mask_name", "mask_recipient"]


def mask_name(name: str | None) -> str:
    return "-" if not name else f"{name.strip()[:1]}***"


def mask_recipient(recipient: Any) -> Any:
    """A copy of an intent's ``recipient`` mapping with every personal field masked."""
    if not isinstance(recipient, dict):
        return recipient
    masked = dict(recipient)
    if masked.get("name"):
        masked["name"] = mask_name(str(masked["name"]))
    if masked.get("phone"):
        masked["phone"] = mask_phone(str(masked["phone"]))
    if masked.get("email"):
        masked["email"] = mask_email(str(masked["email"]))
    if masked.get("postal_address"):
        masked["postal_address"] = "(hidden: your role does not show addresses)"
    return masked


def mask_any(value: object) -> str:
    return mask_text(str(value))
