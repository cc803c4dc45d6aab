"""Optional parts of a contact intent that only some messages carry, and their JSON codec.

A validation notice carries the itemization of 12 CFR 1006.34(c)(2); a letter carries what the
amount due is made of and the contract it arises from (a Chinese demand letter itemises 本金,
利息, 罚息 and 费用). Each part is encoded only when present, so intents without them keep
their bytes; decoding is as strict as the rest of the contract (:mod:`dunning.intents`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from dunning.errors import DecodeError

__all__ = [
    "COLLECTOR_ROLES",
    "KEYS",
    "Breakdown",
    "Itemization",
    "breakdown_from_dict",
    "breakdown_to_dict",
    "collector_role_from",
    "itemization_from_dict",
    "itemization_to_dict",
    "parts_from_dict",
    "parts_to_dict",
]


#: Who collects the debt: the lender itself, or an agency collecting for it. A third-party
#: collector owes a validation notice first (12 CFR 1006.34).
COLLECTOR_ROLES = frozenset({"first_party", "third_party"})


def collector_role_from(value: object) -> str:
    """The decoded role; absent means first party, so older bodies decode unchanged."""
    if value is None:
        return "first_party"
    if value not in COLLECTOR_ROLES:
        raise DecodeError(f"expected one of {sorted(COLLECTOR_ROLES)}", field="collector_role")
    return str(value)


@dataclass(frozen=True, slots=True)
class Itemization:
    """The debt on the itemization date and what changed it since (12 CFR 1006.34(c)(2)):
    ``amount + interest + fees - payments`` is the amount due now."""

    on: date
    amount: Decimal
    interest: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    payments: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class Breakdown:
    """What the amount due is made of (本金/利息/罚息/费用) and the contract it arises from;
    the parts add up to the amount due."""

    principal: Decimal
    interest: Decimal = Decimal(0)
    penalty: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    contract_number: str | None = None
    contract_date: date | None = None


def parts_to_dict(
    collector_role: str, itemization: Itemization | None, breakdown: Breakdown | None
) -> dict[str, Any]:
    """The optional keys of an encoded intent: only those that differ from their absence."""
    out: dict[str, Any] = {}
    if collector_role != "first_party":
        out["collector_role"] = collector_role
    if itemization is not None:
        out["itemization"] = itemization_to_dict(itemization)
    if breakdown is not None:
        out["breakdown"] = breakdown_to_dict(breakdown)
    return out


#: The optional keys of an encoded intent.
KEYS = ("collector_role", "itemization", "breakdown")


def parts_from_dict(found: Mapping[str, object]) -> dict[str, Any]:
    """ContactIntent's keyword arguments for the optional keys ``found`` (None: absent)."""
    return {
        "collector_role": collector_role_from(found.get("collector_role")),
        "itemization": itemization_from_dict(found.get("itemization")),
        "breakdown": breakdown_from_dict(found.get("breakdown")),
    }


def itemization_to_dict(item: Itemization) -> dict[str, Any]:
    return {
        "date": item.on.isoformat(),
        "amount": str(item.amount),
        "interest": str(item.interest),
        "fees": str(item.fees),
        "payments": str(item.payments),
    }


def breakdown_to_dict(parts: Breakdown) -> dict[str, Any]:
    signed = parts.contract_date
    return {
        "principal": str(parts.principal),
        "interest": str(parts.interest),
        "penalty": str(parts.penalty),
        "fees": str(parts.fees),
        "contract_number": parts.contract_number,
        "contract_date": None if signed is None else signed.isoformat(),
    }


class _Fields:
    """Reads one JSON object strictly: every key known, every key read, errors name the key."""

    def __init__(self, data: object, path: str, keys: frozenset[str]) -> None:
        if not isinstance(data, dict):
            raise DecodeError(f"expected an object, got {type(data).__name__}", field=path)
        unknown = sorted(set(data) - keys)
        if unknown:
            raise DecodeError(f"unknown field {unknown[0]!r}", field=path)
        self.data, self.path = data, path

    def text(self, key: str, *, optional: bool = False) -> str | None:
        value = self.data.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise DecodeError("expected non-empty text", field=f"{self.path}.{key}")
        return value

    def amount(self, key: str) -> Decimal:
        text = self.text(key)
        try:
            value = Decimal(text or "")
        except InvalidOperation:
            raise DecodeError(
                f"{text!r} is not a decimal amount", field=f"{self.path}.{key}"
            ) from None
        if not value.is_finite() or value < 0:
            raise DecodeError("must be a finite, non-negative amount", field=f"{self.path}.{key}")
        return value

    def day(self, key: str, *, optional: bool = False) -> date | None:
        text = self.text(key, optional=optional)
        if text is None:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise DecodeError(
                "expected a date like 2026-11-30", field=f"{self.path}.{key}"
            ) from None


def itemization_from_dict(data: object) -> Itemization | None:
    if data is None:
        return None
    f = _Fields(data, "itemization", frozenset({"date", "amount", "interest", "fees", "payments"}))
    on = f.day("date")
    assert on is not None  # required
    return Itemization(on, f.amount("amount"), f.amount("interest"), f.amount("fees"),
                       f.amount("payments"))  # fmt: skip


_BREAKDOWN_KEYS = frozenset(
    {"principal", "interest", "penalty", "fees", "contract_number", "contract_date"}
)


def breakdown_from_dict(data: object) -> Breakdown | None:
    if data is None:
        return None
    keys = frozenset(
        {"principal", "interest", "penalty", "fees", "contract_number", "contract_date"}
    )
    f = _Fields(data, "breakdown", keys)
    return Breakdown(
        principal=f.amount("principal"),
        interest=f.amount("interest"),
        penalty=f.amount("penalty"),
        fees=f.amount("fees"),
        contract_number=f.text("contract_number", optional=True),
        contract_date=f.day("contract_date", optional=True),
    )
