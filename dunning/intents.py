"""The message contract: a ContactIntent asks one channel to contact one person once.

Encoded as JSON with ``schema: "dunning.intent/1"``. Decoding is strict: unknown fields, missing
fields, wrong types, malformed E.164 numbers, naive datetimes and time zones that are not IANA
names are all rejected with a :class:`~dunning.errors.DecodeError` naming the field.

``intent_id`` is deterministic (:func:`make_intent_id`): the same account, strategy step and
evaluation day always give the same id, so re-running the evaluator never duplicates a contact.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dunning import intent_parts as parts
from dunning.account_facts import AccountFacts, facts_of, facts_to_dict
from dunning.errors import DecodeError
from dunning.geo import LATITUDE_LIMIT, LONGITUDE_LIMIT, degrees
from dunning.json_reader import JsonReader, enum_value

__all__ = [
    "MAX_BODY_BYTES",
    "SCHEMA",
    "Channel",
    "ContactIntent",
    "PostalAddress",
    "Recipient",
    "Stage",
    "TemplateRef",
    "decode_intent",
    "encode_intent",
    "intent_from_dict",
    "intent_to_dict",
    "make_intent_id",
]

SCHEMA = "dunning.intent/1"
MAX_BODY_BYTES = 64 * 1024  # a real intent is ~1 KB; anything this big is not one
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
INTENT_ID = re.compile(r"^[0-9a-f]{32}$")
JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z]{2})?$")
LOCALE = re.compile(r"^[a-z]{2}-[A-Z]{2}$")


class Stage(enum.StrEnum):
    PRE_DUE = "pre_due"
    EARLY = "early"
    MID = "mid"
    LATE = "late"


class Channel(enum.StrEnum):
    SMS = "sms"
    VOICE = "voice"
    EMAIL = "email"
    LETTER = "letter"
    VISIT = "visit"  # a field visit by a team of collectors (docs/visits.md)
    BUREAU = "bureau"  # a credit-bureau record, not a message: docs/bureau.md
    LEGAL = "legal"  # the handover to the law firm, not a message: docs/legal.md


@dataclass(frozen=True, slots=True)
class TemplateRef:
    name: str
    locale: str


@dataclass(frozen=True, slots=True)
class PostalAddress:
    lines: tuple[str, ...]
    city: str
    postal_code: str
    country: str
    region: str = ""
    # Field visits only (docs/visits.md): the collectors' territory and the map position.
    territory: str = ""
    latitude: str | None = None  # decimal degrees as text, -90..90
    longitude: str | None = None  # decimal degrees as text, -180..180


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    phone: str | None = None
    email: str | None = None
    postal_address: PostalAddress | None = None


@dataclass(frozen=True, slots=True)
class ContactIntent:
    intent_id: str
    account_id: str
    person_id: str
    debt_id: str
    jurisdiction: str
    stage: Stage
    channel: Channel
    step: str
    template: TemplateRef
    recipient: Recipient
    timezone: str
    amount_due: Decimal
    currency: str
    days_past_due: int
    expires_at: datetime
    strategy: str
    variant: str
    created_at: datetime
    trace_id: str
    not_before: datetime | None = None
    schema: str = field(default=SCHEMA)
    collector_role: str = "first_party"  # or third_party (intent_parts.COLLECTOR_ROLES)
    itemization: parts.Itemization | None = None  # set on validation notices
    breakdown: parts.Breakdown | None = None  # set on letters
    facts: AccountFacts | None = None  # bureau intents only; absent from other channels' JSON

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def make_intent_id(account_id: str, step: str, evaluation_day: date) -> str:
    """Deterministic id of the contact ``step`` for ``account_id`` on ``evaluation_day``."""
    key = f"{account_id}\x1f{step}\x1f{evaluation_day.isoformat()}".encode()
    return hashlib.sha256(key).hexdigest()[:32]


# --- encoding -------------------------------------------------------------------------------


def _iso(value: datetime) -> str:
    return value.isoformat()


def intent_to_dict(intent: ContactIntent) -> dict[str, Any]:
    """The JSON-ready mapping of ``intent`` (Decimal as string, datetimes as ISO 8601)."""
    r = intent.recipient
    address = r.postal_address
    return {
        "schema": intent.schema,
        "intent_id": intent.intent_id,
        "account_id": intent.account_id,
        "person_id": intent.person_id,
        "debt_id": intent.debt_id,
        "jurisdiction": intent.jurisdiction,
        "stage": intent.stage.value,
        "channel": intent.channel.value,
        "step": intent.step,
        "template": {"name": intent.template.name, "locale": intent.template.locale},
        "recipient": {
            "name": r.name,
            "phone": r.phone,
            "email": r.email,
            "postal_address": None
            if address is None
            else {
                "lines": list(address.lines),
                "city": address.city,
                "region": address.region or None,
                "postal_code": address.postal_code,
                "country": address.country,
                **{k: v for k, v in _visit_site(address) if v},  # only when set: bytes as before
            },
        },
        "timezone": intent.timezone,
        "amount_due": str(intent.amount_due),
        "currency": intent.currency,
        "days_past_due": intent.days_past_due,
        "not_before": None if intent.not_before is None else _iso(intent.not_before),
        "expires_at": _iso(intent.expires_at),
        "strategy": intent.strategy,
        "variant": intent.variant,
        "created_at": _iso(intent.created_at),
        "trace_id": intent.trace_id,
        **parts.parts_to_dict(intent.collector_role, intent.itemization, intent.breakdown),
    } | ({} if intent.facts is None else {"facts": facts_to_dict(intent.facts)})


def _visit_site(a: PostalAddress) -> tuple[tuple[str, str | None], ...]:
    return (("territory", a.territory), ("latitude", a.latitude), ("longitude", a.longitude))


def encode_intent(intent: ContactIntent) -> bytes:
    """Serialise to compact UTF-8 JSON with sorted keys (stable bytes for the same intent)."""
    return json.dumps(
        intent_to_dict(intent), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode()


# --- strict decoding ------------------------------------------------------------------------


def _zone(value: str) -> str:
    if value.startswith(("/", ".")) or ".." in value:
        raise DecodeError(f"{value!r} is not an IANA time zone", field="timezone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise DecodeError(f"{value!r} is not an IANA time zone", field="timezone") from None
    return value


def _decimal(value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise DecodeError(f"{value!r} is not a decimal amount", field="amount_due") from None
    if not amount.is_finite() or amount < 0:
        raise DecodeError(f"{value!r} must be a finite, non-negative amount", field="amount_due")
    return amount


def _address(data: object) -> PostalAddress | None:
    if data is None:
        return None
    r = JsonReader(data, "recipient.postal_address")
    lines = r.raw("lines")
    if not isinstance(lines, list) or not lines or not all(isinstance(x, str) for x in lines):
        raise DecodeError("expected a non-empty list of strings", field=f"{r.path}.lines")
    address = PostalAddress(
        lines=tuple(lines),
        city=r.req("city"),
        region=r.text("region", optional=True) or "",
        postal_code=r.req("postal_code"),
        country=r.req("country", pattern=re.compile(r"^[A-Z]{2}$"), what="an ISO country code"),
        territory=r.text("territory", optional=True) or "",
        latitude=degrees(r.text("latitude", optional=True), LATITUDE_LIMIT, f"{r.path}.latitude"),
        longitude=degrees(
            r.text("longitude", optional=True), LONGITUDE_LIMIT, f"{r.path}.longitude"
        ),
    )
    r.finish()
    return address


def _recipient(data: object, channel: Channel) -> Recipient:
    r = JsonReader(data, "recipient")
    recipient = Recipient(
        name=r.req("name"),
        phone=r.text("phone", optional=True, pattern=E164, what="an E.164 phone number", pii=True),
        email=r.text("email", optional=True, pattern=EMAIL, what="an email address", pii=True),
        postal_address=_address(r.raw("postal_address", optional=True)),
    )
    r.finish()
    needs = {
        Channel.SMS: recipient.phone,
        Channel.VOICE: recipient.phone,
        Channel.EMAIL: recipient.email,
        Channel.LETTER: recipient.postal_address or recipient.email,
        Channel.VISIT: recipient.postal_address,
        Channel.BUREAU: recipient.name,
        Channel.LEGAL: recipient.name,
    }[channel]
    if needs is None:
        wanted = {
            Channel.SMS: "phone",
            Channel.VOICE: "phone",
            Channel.EMAIL: "email",
            Channel.LETTER: "postal_address or email",
            Channel.VISIT: "postal_address",
            Channel.BUREAU: "name",
            Channel.LEGAL: "name",
        }[channel]
        raise DecodeError(f"a {channel.value} intent needs {wanted}", field="recipient")
    return recipient


def intent_from_dict(data: Mapping[str, Any] | object) -> ContactIntent:
    """Build a ContactIntent from decoded JSON, enforcing every rule of the contract."""
    r = JsonReader(data, "")
    schema = r.req("schema")
    if schema != SCHEMA:
        raise DecodeError(
            f"unsupported schema {schema!r}, this worker reads {SCHEMA!r}", field="schema"
        )
    channel = enum_value(Channel, r.req("channel"), "channel")
    template = JsonReader(r.raw("template"), "template")
    template_ref = TemplateRef(
        name=template.req("name"),
        locale=template.req("locale", pattern=LOCALE, what="a locale like zh-CN"),
    )
    template.finish()
    days = r.integer("days_past_due")
    intent = ContactIntent(
        schema=schema,
        intent_id=r.req("intent_id", pattern=INTENT_ID, what="32 lowercase hex digits"),
        account_id=r.req("account_id"),
        person_id=r.req("person_id"),
        debt_id=r.req("debt_id"),
        jurisdiction=r.req("jurisdiction", pattern=JURISDICTION, what="a jurisdiction like CN"),
        stage=enum_value(Stage, r.req("stage"), "stage"),
        channel=channel,
        step=r.req("step"),
        template=template_ref,
        recipient=_recipient(r.raw("recipient"), channel),
        timezone=_zone(r.req("timezone")),
        amount_due=_decimal(r.req("amount_due")),
        currency=r.req("currency", pattern=CURRENCY, what="an ISO 4217 currency code"),
        days_past_due=days,
        not_before=r.instant("not_before", optional=True),
        expires_at=_required(r.instant("expires_at")),
        strategy=r.req("strategy"),
        variant=r.req("variant"),
        created_at=_required(r.instant("created_at")),
        trace_id=r.req("trace_id"),
        **parts.parts_from_dict({key: r.raw(key, optional=True) for key in parts.KEYS}),
        facts=facts_of(r.raw("facts", optional=True), channel.value),
    )
    r.finish()
    if intent.expires_at <= intent.created_at:
        raise DecodeError("must be later than created_at", field="expires_at")
    return intent


def _required(value: datetime | None) -> datetime:
    assert value is not None  # instant() raises for a missing required field
    return value


def decode_intent(body: bytes) -> ContactIntent:
    """Decode a message body; raises DecodeError with the reason for anything off-contract."""
    if len(body) > MAX_BODY_BYTES:
        raise DecodeError(f"body is {len(body)} bytes, the limit is {MAX_BODY_BYTES}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("body is not UTF-8") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DecodeError(
            f"body is not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    return intent_from_dict(data)
