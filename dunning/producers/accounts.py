"""The Account record every source yields, and the validation of one raw row into it.

One account is one debt of one person (``account_id`` doubles as the intent's ``debt_id``).
Raw rows are mappings of column name to text (CSV), or to JSON/SQL values that are turned into
text first, so CSV, JSONL and SQL share one set of rules; :class:`RowError` names the column.
The columns are documented in ``docs/accounts.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.numbers import get_currency_precision

from dunning.account_facts import ACCOUNT_TYPES, DELETE_REASONS, TERMS_PATTERN
from dunning.errors import DecodeError
from dunning.geo import LATITUDE_LIMIT, LONGITUDE_LIMIT, degrees
from dunning.intent_parts import Breakdown, Itemization
from dunning.intents import CURRENCY, E164, EMAIL, LOCALE, PostalAddress
from dunning.safe_text import NAME_MAX_CHARS, text_problem

__all__ = [
    "AMOUNT_MAX_DIGITS",
    "COLUMNS",
    "FLAGS",
    "ID_MAX_CHARS",
    "JURISDICTIONS",
    "NAME_MAX_CHARS",
    "REQUIRED_COLUMNS",
    "TEXT_MAX_CHARS",
    "Account",
    "BureauColumns",
    "RowError",
    "account_from_row",
    "as_text",
]

JURISDICTIONS = frozenset({"CN", "US", "US-MA", "UK"})
COLLECTOR_ROLES = frozenset({"first_party", "third_party"})
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
# ASCII digits only: Python's Decimal also takes 1_000, 1e3, Arabic-Indic and full-width digits.
_AMOUNT = re.compile(r"([0-9]+)(?:\.([0-9]+))?")

#: account_id and person_id: the width of the ledger's id columns.
ID_MAX_CHARS = 128
#: Other free text (address lines, city, region, postal code).
TEXT_MAX_CHARS = 200
EMAIL_MAX_CHARS = 254  # RFC 5321's limit on a forward path
#: Digits before the decimal point: up to 999,999,999,999. Beyond the decimal context's 28
#: digits every worker would fail on the amount (InvalidOperation) while formatting it.
AMOUNT_MAX_DIGITS = 12

#: Columns that must be present and non-empty in every row.
REQUIRED_COLUMNS: tuple[str, ...] = (
    "account_id",
    "person_id",
    "name",
    "timezone",
    "locale",
    "jurisdiction",
    "currency",
    "amount_due",
    "due_date",
)
FLAGS: tuple[str, ...] = (
    "sms_opt_out",
    "email_opt_out",
    "cease",
    "disputed",
    "bankrupt",
    "deceased",
    "attorney_represented",
    "paid",
    "hardship",
)
#: The validation notice's itemization (docs/accounts.md); every one is optional.
ITEMIZATION_COLUMNS = (
    "itemization_date",
    "interest_since_itemization",
    "fees_since_itemization",
    "payments_since_itemization",
    "esign_consent",
)
_SINCE_ITEMIZATION = ITEMIZATION_COLUMNS[1:4]
#: A letter's breakdown and contract (docs/accounts.md); every one is optional.
LETTER_COLUMNS = ("interest", "penalty_interest", "fees", "contract_number", "contract_date")
#: Every column a source understands, in the order of the sample CSV.
COLUMNS: tuple[str, ...] = (
    *REQUIRED_COLUMNS[:3],
    "phone",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    *REQUIRED_COLUMNS[3:],
    "collector_role",
    "principal",
    "last_payment_date",
    "statute_of_limitations",
    *FLAGS,
    "promise_to_pay_until",
    *("territory", "latitude", "longitude"),  # field visits (docs/visits.md)
    "litigation",
    "score",
    "score_model",
    "segment",
    "year_of_birth",
    "charged_off",
    *ITEMIZATION_COLUMNS,
    *LETTER_COLUMNS,
    # credit-bureau reporting (docs/bureau.md); all optional
    "account_type",
    "original_creditor",
    "date_opened",
    "credit_limit",
    "terms",
    "bureau_delete",
)


class RowError(ValueError):
    """One row breaks a rule; ``column`` names the culprit when one is to blame."""

    def __init__(self, reason: str, column: str | None = None) -> None:
        self.reason = reason
        self.column = column
        super().__init__(f"{column}: {reason}" if column else reason)


@dataclass(frozen=True, slots=True)
class BureauColumns:
    """The optional columns only the credit-bureau step reads (docs/accounts.md)."""

    account_type: str = ""  # empty: installment (first party) or collection (third party)
    original_creditor: str | None = None
    date_opened: date | None = None
    credit_limit: Decimal | None = None
    terms: str | None = None
    charged_off: bool = False
    delete_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Account:
    """One overdue (or soon due) debt of one person, as the lender's book states it."""

    account_id: str
    person_id: str
    name: str
    phone: str | None
    email: str | None
    address: PostalAddress | None
    timezone: str
    locale: str
    jurisdiction: str
    collector_role: str
    currency: str
    amount_due: Decimal
    principal: Decimal
    due_date: date
    last_payment_date: date | None = None
    statute_of_limitations: date | None = None
    sms_opt_out: bool = False
    email_opt_out: bool = False
    cease: bool = False
    disputed: bool = False
    bankrupt: bool = False
    deceased: bool = False
    attorney_represented: bool = False
    paid: bool = False
    promise_to_pay_until: date | None = None
    hardship: bool = False
    litigation: bool = False
    #: A lender's own risk score (higher: less risk) and the model that produced it.
    score: int | None = None
    score_model: str = ""
    #: A manual segment set by the lender (matched by a strategy's ``segment`` rule).
    segment: str = ""
    #: Asked on calls to confirm the right party before the debt is mentioned.
    year_of_birth: int | None = None
    charged_off: bool = False
    itemization_date: date | None = None
    interest_since_itemization: Decimal = Decimal(0)
    fees_since_itemization: Decimal = Decimal(0)
    payments_since_itemization: Decimal = Decimal(0)
    esign_consent: bool = False  # E-SIGN consent on record: notices may go by email
    breakdown: Breakdown | None = None  # principal, interest, penalty, fees; contract
    bureau: BureauColumns = field(default_factory=BureauColumns)

    def itemization(self) -> Itemization:
        """The debt on the itemization date (default: the last payment, else the due date) and
        the changes since; the amount then is derived so that the itemization adds up to
        ``amount_due``."""
        on = self.itemization_date or self.last_payment_date or self.due_date
        interest, fees = self.interest_since_itemization, self.fees_since_itemization
        paid = self.payments_since_itemization
        return Itemization(on, self.amount_due - interest - fees + paid, interest, fees, paid)

    def days_past_due(self, as_of: date) -> int:
        """Days from the due date to ``as_of``: negative before the due date, 0 on it."""
        return (as_of - self.due_date).days

    def time_barred(self, as_of: date) -> bool:
        """True once the statute of limitations has run (no lawyer letter, no legal wording)."""
        return self.statute_of_limitations is not None and as_of > self.statute_of_limitations

    def promise_open(self, as_of: date) -> bool:
        """True while a promise to pay is not yet due (no collection contact until then)."""
        return self.promise_to_pay_until is not None and as_of <= self.promise_to_pay_until


def _bureau_columns(row: Mapping[str, str], currency: str) -> BureauColumns:
    terms = _text(row, "terms").upper() or None
    if terms is not None and not TERMS_PATTERN.match(terms):
        raise RowError(f"{terms!r} is not a number of months (1-999), REV or LOC", "terms")
    limit = _text(row, "credit_limit")
    return BureauColumns(
        account_type=_choice(row, "account_type", ACCOUNT_TYPES | {""}, ""),
        original_creditor=_safe(row, "original_creditor", NAME_MAX_CHARS) or None,
        date_opened=_day(row, "date_opened"),
        credit_limit=_amount(row, "credit_limit", currency) if limit else None,
        terms=terms,
        charged_off=_flag(row, "charged_off"),
        delete_reason=_choice(row, "bureau_delete", DELETE_REASONS | {""}, "") or None,
    )


# --- row validation -------------------------------------------------------------------------


def _text(row: Mapping[str, str], column: str) -> str:
    return (row.get(column) or "").strip()


def _required(row: Mapping[str, str], column: str) -> str:
    value = _text(row, column)
    if not value:
        raise RowError("is required", column)
    return value


def _safe(
    row: Mapping[str, str],
    column: str,
    max_chars: int,
    *,
    multiline: bool = False,
    required: bool = False,
) -> str:
    """Free text that reaches messages, headers or the ledger: printable, bounded, no encoded
    words (dunning/safe_text.py). The reason never quotes the value: it may be personal data."""
    value = _required(row, column) if required else _text(row, column)
    problem = text_problem(value, max_chars=max_chars, multiline=multiline)
    if problem is not None:
        raise RowError(problem, column)
    return value


def _day(row: Mapping[str, str], column: str) -> date | None:
    value = _text(row, column)
    if not value:
        return None
    if not _ISO_DAY.match(value):
        raise RowError(f"{value!r} is not a date like 2026-11-28", column)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise RowError(f"{value!r} is not a valid date", column) from None


def _amount(
    row: Mapping[str, str], column: str, currency: str, default: Decimal | None = None
) -> Decimal:
    """A plain ASCII decimal (``1234.50``) with at most the currency's minor digits."""
    value = _text(row, column)
    if not value and default is not None:
        return default
    minor = get_currency_precision(currency)
    match = _AMOUNT.fullmatch(value)
    if match is None:
        raise RowError(
            f"{value[:40]!r} is not a non-negative decimal amount like 1234.50 (ASCII digits,"
            f" '.' as the separator, no exponent or thousands separator)",
            column,
        )
    whole, fraction = match.group(1).lstrip("0"), match.group(2) or ""
    if len(whole) > AMOUNT_MAX_DIGITS:
        raise RowError(
            f"has {len(whole)} digits before the point; at most {AMOUNT_MAX_DIGITS} are allowed",
            column,
        )
    if len(fraction) > minor:
        raise RowError(f"has {len(fraction)} decimals; {currency} has at most {minor}", column)
    return Decimal(value)


def _flag(row: Mapping[str, str], column: str) -> bool:
    value = _text(row, column).lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise RowError(f"{value!r} is not a flag (true/false/1/0/yes/no/empty)", column)


def _zone(value: str) -> str:
    # ZoneInfo would also accept a file path; an account's zone must be an IANA key.
    if value.startswith(("/", ".")) or ".." in value:
        raise RowError(f"{value!r} is not an IANA time zone", "timezone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise RowError(f"{value!r} is not an IANA time zone", "timezone") from None
    return value


def _matching(
    row: Mapping[str, str], column: str, pattern: re.Pattern[str], what: str, *, pii: bool = False
) -> str:
    value = _text(row, column)
    if value and not pattern.match(value):
        # A phone number or email is personal data: the reason (logged, printed) never echoes it.
        shown = "the value" if pii else repr(value)
        raise RowError(f"{shown} is not {what}", column)
    return value


def _address(row: Mapping[str, str]) -> PostalAddress | None:
    lines = tuple(
        x
        for x in (
            _safe(row, "address_line1", TEXT_MAX_CHARS, multiline=True),
            _safe(row, "address_line2", TEXT_MAX_CHARS, multiline=True),
        )
        if x
    )
    if not lines:
        return None
    return PostalAddress(
        lines=lines,
        city=_safe(row, "city", TEXT_MAX_CHARS, required=True),
        region=_safe(row, "region", TEXT_MAX_CHARS),
        postal_code=_safe(row, "postal_code", TEXT_MAX_CHARS, required=True),
        country=_matching(row, "country", _COUNTRY, "an ISO country code like CN")
        or _required(row, "country"),
        territory=_safe(row, "territory", TEXT_MAX_CHARS),
        latitude=_coordinate(row, "latitude", LATITUDE_LIMIT),
        longitude=_coordinate(row, "longitude", LONGITUDE_LIMIT),
    )


def _coordinate(row: Mapping[str, str], column: str, limit: int) -> str | None:
    try:
        return degrees(_text(row, column) or None, limit, column)
    except DecodeError as exc:
        raise RowError(exc.reason, column) from None


def _email(row: Mapping[str, str]) -> str:
    # The address goes into the To header: the header rules apply on top of the pattern.
    return _matching(row, "email", EMAIL, "an email address", pii=True) and _safe(
        row, "email", EMAIL_MAX_CHARS
    )


def _choice(row: Mapping[str, str], column: str, allowed: frozenset[str], default: str) -> str:
    value = _text(row, column) or default
    if value not in allowed:
        raise RowError(f"{value!r} is not one of {', '.join(sorted(allowed))}", column)
    return value


def account_from_row(row: Mapping[str, str]) -> Account:
    """Validate one raw row (column -> text); raises RowError naming the first bad column."""
    for column in REQUIRED_COLUMNS:
        _required(row, column)
    account_id = _safe(row, "account_id", ID_MAX_CHARS)
    person_id = _safe(row, "person_id", ID_MAX_CHARS)
    name = _safe(row, "name", NAME_MAX_CHARS)
    currency = _matching(row, "currency", CURRENCY, "an ISO 4217 currency code")
    amount_due = _amount(row, "amount_due", currency)
    due_date = _day(row, "due_date")
    assert due_date is not None  # required above
    account = Account(
        account_id=account_id,
        person_id=person_id,
        name=name,
        phone=_matching(
            row, "phone", E164, "an E.164 phone number (+, country code, number)", pii=True
        )
        or None,
        email=_email(row) or None,
        address=_address(row),
        timezone=_zone(_text(row, "timezone")),
        locale=_matching(row, "locale", LOCALE, "a locale like zh-CN"),
        jurisdiction=_choice(row, "jurisdiction", JURISDICTIONS, ""),
        collector_role=_choice(row, "collector_role", COLLECTOR_ROLES, "first_party"),
        currency=currency,
        amount_due=amount_due,
        principal=_amount(row, "principal", currency, default=amount_due),
        due_date=due_date,
        last_payment_date=_day(row, "last_payment_date"),
        statute_of_limitations=_day(row, "statute_of_limitations"),
        promise_to_pay_until=_day(row, "promise_to_pay_until"),
        sms_opt_out=_flag(row, "sms_opt_out"),
        email_opt_out=_flag(row, "email_opt_out"),
        cease=_flag(row, "cease"),
        disputed=_flag(row, "disputed"),
        bankrupt=_flag(row, "bankrupt"),
        deceased=_flag(row, "deceased"),
        attorney_represented=_flag(row, "attorney_represented"),
        paid=_flag(row, "paid"),
        hardship=_flag(row, "hardship"),
        litigation=_flag(row, "litigation"),
        score=_whole(row, "score", 0, 9999),
        score_model=_safe(row, "score_model", ID_MAX_CHARS),
        segment=_safe(row, "segment", ID_MAX_CHARS),
        year_of_birth=_whole(row, "year_of_birth", 1900, 2100),
        charged_off=_flag(row, "charged_off"),
        itemization_date=_day(row, "itemization_date"),
        **{c: _amount(row, c, currency, default=Decimal(0)) for c in _SINCE_ITEMIZATION},  # type: ignore[arg-type]
        esign_consent=_flag(row, "esign_consent"),
        bureau=_bureau_columns(row, currency),
    )
    account = replace(account, breakdown=_breakdown(row, account))
    if account.itemization().amount < 0:
        raise RowError(
            "interest and fees since the itemization date exceed amount_due plus payments",
            "interest_since_itemization",
        )
    return account


def _breakdown(row: Mapping[str, str], account: Account) -> Breakdown:
    """Outstanding principal, interest, penalty and fees adding up to ``amount_due``: interest
    defaults to what the amount due holds beyond ``principal`` (docs/accounts.md)."""
    currency, due = account.currency, account.amount_due
    penalty = _amount(row, "penalty_interest", currency, default=Decimal(0))
    fees = _amount(row, "fees", currency, default=Decimal(0))
    if _text(row, "interest"):
        interest = _amount(row, "interest", currency)
    else:
        interest = max(due - account.principal - penalty - fees, Decimal(0))
    principal = due - interest - penalty - fees
    if principal < 0:
        raise RowError("interest + penalty_interest + fees exceed amount_due", "interest")
    number = _safe(row, "contract_number", ID_MAX_CHARS) or None
    return Breakdown(principal, interest, penalty, fees, number, _day(row, "contract_date"))


def _whole(row: Mapping[str, str], column: str, low: int, high: int) -> int | None:
    value = _text(row, column)
    if not value:
        return None
    if not value.isascii() or not value.lstrip("-").isdigit():
        raise RowError(f"{value[:20]!r} is not a whole number", column)
    number = int(value)
    if not low <= number <= high:
        raise RowError(f"{number} is outside {low}..{high}", column)
    return number


def as_text(value: object) -> str:
    """A JSON or SQL value as the text a CSV cell would hold (None -> empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
