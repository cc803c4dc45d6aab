"""What a credit-bureau record needs to know about the account beyond the contact fields.

A ``bureau`` intent carries these facts (the ``facts`` object of the intent JSON), taken from the
book when the evaluator makes the intent; no other channel's intent has them. Decoding is as
strict as the rest of the contract: unknown keys, wrong types and values outside the lists below
are a :class:`~dunning.errors.DecodeError` naming the field.

Columns and their meaning: docs/accounts.md; what each becomes in a bureau file: docs/bureau.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from dunning.errors import DecodeError

__all__ = [
    "ACCOUNT_TYPES",
    "COLLECTOR_ROLES",
    "DELETE_REASONS",
    "TERMS_PATTERN",
    "AccountFacts",
    "facts_from_dict",
    "facts_of",
    "facts_to_dict",
]

#: The neutral account types of the book (column ``account_type``); docs/bureau.md maps each to
#: a Metro 2 portfolio and account type and to a PBOC account type.
ACCOUNT_TYPES = frozenset(
    {"installment", "revolving_loan", "credit_card", "quasi_credit_card", "revolving_sub",
     "collection"}
)  # fmt: skip
COLLECTOR_ROLES = frozenset({"first_party", "third_party"})
#: Why an account is deleted from reporting (column ``bureau_delete``).
DELETE_REASONS = frozenset({"identity_theft", "error"})
TERMS_PATTERN = re.compile(r"^(?:[1-9][0-9]{0,2}|REV|LOC)$")


@dataclass(frozen=True, slots=True)
class AccountFacts:
    """The account as a bureau sees it; amounts in the intent's currency."""

    collector_role: str
    account_type: str
    principal: Decimal
    due_date: date  # the due date the account first missed: the date of first delinquency
    date_opened: date | None = None
    credit_limit: Decimal | None = None
    terms: str | None = None  # months (1-999), REV (revolving) or LOC (line of credit)
    original_creditor: str | None = None
    last_payment_date: date | None = None
    charged_off: bool = False
    paid: bool = False
    disputed: bool = False
    delete_reason: str | None = None  # identity_theft | error: delete from reporting


def facts_to_dict(facts: AccountFacts) -> dict[str, Any]:
    """The JSON-ready mapping (dates ISO, amounts as strings)."""
    return {
        "collector_role": facts.collector_role,
        "account_type": facts.account_type,
        "principal": str(facts.principal),
        "due_date": facts.due_date.isoformat(),
        "date_opened": None if facts.date_opened is None else facts.date_opened.isoformat(),
        "credit_limit": None if facts.credit_limit is None else str(facts.credit_limit),
        "terms": facts.terms,
        "original_creditor": facts.original_creditor,
        "last_payment_date": None
        if facts.last_payment_date is None
        else facts.last_payment_date.isoformat(),
        "charged_off": facts.charged_off,
        "paid": facts.paid,
        "disputed": facts.disputed,
        "delete_reason": facts.delete_reason,
    }


def _field(name: str) -> str:
    return f"facts.{name}"


def _text(data: dict[str, Any], name: str, *, optional: bool = False) -> str | None:
    value = data.get(name)
    if value is None:
        if optional:
            return None
        raise DecodeError("missing required field", field=_field(name))
    if not isinstance(value, str) or not value.strip():
        raise DecodeError("expected a non-empty string", field=_field(name))
    return value


def _choice(data: dict[str, Any], name: str, allowed: frozenset[str], *, optional: bool = False
            ) -> str | None:  # fmt: skip
    value = _text(data, name, optional=optional)
    if value is not None and value not in allowed:
        raise DecodeError(
            f"{value!r} is not one of {', '.join(sorted(allowed))}", field=_field(name)
        )
    return value


def _day(data: dict[str, Any], name: str, *, optional: bool = False) -> date | None:
    value = _text(data, name, optional=optional)
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DecodeError(f"{value!r} is not a YYYY-MM-DD date", field=_field(name)) from None


def _amount(data: dict[str, Any], name: str, *, optional: bool = False) -> Decimal | None:
    value = _text(data, name, optional=optional)
    if value is None:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise DecodeError(f"{value!r} is not a decimal amount", field=_field(name)) from None
    if not amount.is_finite() or amount < 0:
        raise DecodeError(f"{value!r} must be a finite, non-negative amount", field=_field(name))
    return amount


def _flag(data: dict[str, Any], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise DecodeError(f"expected true or false, got {type(value).__name__}", field=_field(name))
    return value


def facts_from_dict(data: object) -> AccountFacts:
    """Decode the ``facts`` object of a bureau intent; raises DecodeError naming the field."""
    if not isinstance(data, dict):
        raise DecodeError(f"expected an object, got {type(data).__name__}", field="facts")
    unknown = sorted(set(data) - set(facts_to_dict(_EMPTY)))
    if unknown:
        raise DecodeError(f"unknown field(s) {', '.join(unknown)}", field="facts")
    terms = _text(data, "terms", optional=True)
    if terms is not None and not TERMS_PATTERN.match(terms):
        raise DecodeError(f"{terms!r} is not 1-999 months, REV or LOC", field=_field("terms"))
    # Required fields: the helpers raise rather than return None, so the defaults never apply.
    role = _choice(data, "collector_role", COLLECTOR_ROLES) or ""
    kind = _choice(data, "account_type", ACCOUNT_TYPES) or ""
    principal = _amount(data, "principal") or Decimal(0)
    due = _day(data, "due_date") or date.min
    return AccountFacts(
        collector_role=role,
        account_type=kind,
        principal=principal,
        due_date=due,
        date_opened=_day(data, "date_opened", optional=True),
        credit_limit=_amount(data, "credit_limit", optional=True),
        terms=terms,
        original_creditor=_text(data, "original_creditor", optional=True),
        last_payment_date=_day(data, "last_payment_date", optional=True),
        charged_off=_flag(data, "charged_off"),
        paid=_flag(data, "paid"),
        disputed=_flag(data, "disputed"),
        delete_reason=_choice(data, "delete_reason", DELETE_REASONS, optional=True),
    )


def facts_of(data: object, channel: str) -> AccountFacts | None:
    """The intent's ``facts``: required on a ``bureau`` intent, refused on any other."""
    wanted = channel == "bureau"
    if wanted and data is None:
        raise DecodeError("a bureau intent needs the account's facts", field="facts")
    if not wanted and data is not None:
        raise DecodeError(f"a {channel} intent carries no facts", field="facts")
    return None if data is None else facts_from_dict(data)


_EMPTY = AccountFacts("first_party", "installment", Decimal(0), date(2000, 1, 1))
