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

from dunning.account_facts import ACCOUNT_TYPES, DELETE_REASONS, TERMS_PATTERN
from dunning.geo import LATITUDE_LIMIT, LONGITUDE_LIMIT
from dunning.intent_parts import Breakdown, Itemization
from dunning.intents import CURRENCY, E164, LOCALE, PostalAddress
from dunning.producers import row_fields as cell
from dunning.producers.row_fields import (
    AMOUNT_MAX_DIGITS,
    ID_MAX_CHARS,
    TEXT_MAX_CHARS,
    RowError,
)
from dunning.safe_text import NAME_MAX_CHARS

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

_COUNTRY = re.compile(r"^[A-Z]{2}$")
JURISDICTIONS = frozenset({"CN", "US", "US-MA", "UK"})
COLLECTOR_ROLES = frozenset({"first_party", "third_party"})
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
    terms = cell.text(row, "terms").upper() or None
    if terms is not None and not TERMS_PATTERN.match(terms):
        raise RowError(f"{terms!r} is not a number of months (1-999), REV or LOC", "terms")
    limit = cell.text(row, "credit_limit")
    return BureauColumns(
        account_type=cell.choice(row, "account_type", ACCOUNT_TYPES | {""}, ""),
        original_creditor=cell.safe(row, "original_creditor", NAME_MAX_CHARS) or None,
        date_opened=cell.day(row, "date_opened"),
        credit_limit=cell.amount(row, "credit_limit", currency) if limit else None,
        terms=terms,
        charged_off=cell.flag(row, "charged_off"),
        delete_reason=cell.choice(row, "bureau_delete", DELETE_REASONS | {""}, "") or None,
    )


def _address(row: Mapping[str, str]) -> PostalAddress | None:
    lines = tuple(
        x
        for x in (
            cell.safe(row, "address_line1", TEXT_MAX_CHARS, multiline=True),
            cell.safe(row, "address_line2", TEXT_MAX_CHARS, multiline=True),
        )
        if x
    )
    if not lines:
        return None
    return PostalAddress(
        lines=lines,
        city=cell.safe(row, "city", TEXT_MAX_CHARS, required=True),
        region=cell.safe(row, "region", TEXT_MAX_CHARS),
        postal_code=cell.safe(row, "postal_code", TEXT_MAX_CHARS, required=True),
        country=cell.matching(row, "country", _COUNTRY, "an ISO country code like CN")
        or cell.required_text(row, "country"),
        territory=cell.safe(row, "territory", TEXT_MAX_CHARS),
        latitude=cell.coordinate(row, "latitude", LATITUDE_LIMIT),
        longitude=cell.coordinate(row, "longitude", LONGITUDE_LIMIT),
    )


def account_from_row(row: Mapping[str, str]) -> Account:
    """Validate one raw row (column -> text); raises RowError naming the first bad column."""
    for column in REQUIRED_COLUMNS:
        cell.required_text(row, column)
    account_id = cell.safe(row, "account_id", ID_MAX_CHARS)
    person_id = cell.safe(row, "person_id", ID_MAX_CHARS)
    name = cell.safe(row, "name", NAME_MAX_CHARS)
    currency = cell.matching(row, "currency", CURRENCY, "an ISO 4217 currency code")
    amount_due = cell.amount(row, "amount_due", currency)
    due_date = cell.day(row, "due_date")
    assert due_date is not None  # required above
    account = Account(
        account_id=account_id,
        person_id=person_id,
        name=name,
        phone=cell.matching(
            row, "phone", E164, "an E.164 phone number (+, country code, number)", pii=True
        )
        or None,
        email=cell.email(row) or None,
        address=_address(row),
        timezone=cell.zone(cell.text(row, "timezone")),
        locale=cell.matching(row, "locale", LOCALE, "a locale like zh-CN"),
        jurisdiction=cell.choice(row, "jurisdiction", JURISDICTIONS, ""),
        collector_role=cell.choice(row, "collector_role", COLLECTOR_ROLES, "first_party"),
        currency=currency,
        amount_due=amount_due,
        principal=cell.amount(row, "principal", currency, default=amount_due),
        due_date=due_date,
        last_payment_date=cell.day(row, "last_payment_date"),
        statute_of_limitations=cell.day(row, "statute_of_limitations"),
        promise_to_pay_until=cell.day(row, "promise_to_pay_until"),
        sms_opt_out=cell.flag(row, "sms_opt_out"),
        email_opt_out=cell.flag(row, "email_opt_out"),
        cease=cell.flag(row, "cease"),
        disputed=cell.flag(row, "disputed"),
        bankrupt=cell.flag(row, "bankrupt"),
        deceased=cell.flag(row, "deceased"),
        attorney_represented=cell.flag(row, "attorney_represented"),
        paid=cell.flag(row, "paid"),
        hardship=cell.flag(row, "hardship"),
        litigation=cell.flag(row, "litigation"),
        score=cell.whole(row, "score", 0, 9999),
        score_model=cell.safe(row, "score_model", ID_MAX_CHARS),
        segment=cell.safe(row, "segment", ID_MAX_CHARS),
        year_of_birth=cell.whole(row, "year_of_birth", 1900, 2100),
        charged_off=cell.flag(row, "charged_off"),
        itemization_date=cell.day(row, "itemization_date"),
        **{c: cell.amount(row, c, currency, default=Decimal(0)) for c in _SINCE_ITEMIZATION},  # type: ignore[arg-type]
        esign_consent=cell.flag(row, "esign_consent"),
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
    penalty = cell.amount(row, "penalty_interest", currency, default=Decimal(0))
    fees = cell.amount(row, "fees", currency, default=Decimal(0))
    if cell.text(row, "interest"):
        interest = cell.amount(row, "interest", currency)
    else:
        interest = max(due - account.principal - penalty - fees, Decimal(0))
    principal = due - interest - penalty - fees
    if principal < 0:
        raise RowError("interest + penalty_interest + fees exceed amount_due", "interest")
    number = cell.safe(row, "contract_number", ID_MAX_CHARS) or None
    return Breakdown(principal, interest, penalty, fees, number, cell.day(row, "contract_date"))


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
