import json
from datetime import date

import pytest

from dunning.errors import DecodeError
from dunning.intents import Channel, decode_intent, encode_intent, intent_to_dict, make_intent_id
from tests.factories import make_intent


@pytest.mark.parametrize("channel", list(Channel))
def test_round_trip_keeps_every_field(channel: Channel) -> None:
    intent = make_intent(channel)
    assert decode_intent(encode_intent(intent)) == intent


def test_intent_id_is_deterministic_per_account_step_and_day() -> None:
    a = make_intent_id("acct-1", "early.sms.d1", date(2026, 11, 28))
    assert a == make_intent_id("acct-1", "early.sms.d1", date(2026, 11, 28))
    assert a != make_intent_id("acct-1", "early.sms.d1", date(2026, 11, 29))
    assert a != make_intent_id("acct-1", "early.voice.d3", date(2026, 11, 28))
    assert a != make_intent_id("acct-2", "early.sms.d1", date(2026, 11, 28))


def _body(**changes: object) -> bytes:
    data = intent_to_dict(make_intent())
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            data[outer][inner] = value
        else:
            data[key] = value
    return json.dumps(data).encode()


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"surprise": 1}, None, "unknown field(s) surprise"),
        ({"recipient.phone": "13800138000"}, "recipient.phone", "E.164"),
        ({"recipient.phone": "+86 138 0013 8000"}, "recipient.phone", "E.164"),
        ({"expires_at": "2026-11-30T10:00:00"}, "expires_at", "naive"),
        ({"timezone": "China Standard Time"}, "timezone", "IANA"),
        ({"timezone": "../../etc/passwd"}, "timezone", "IANA"),
        ({"days_past_due": "5"}, "days_past_due", "integer"),
        ({"days_past_due": True}, "days_past_due", "integer"),
        ({"amount_due": "12,50"}, "amount_due", "decimal"),
        ({"amount_due": "-1"}, "amount_due", "non-negative"),
        ({"channel": "fax"}, "channel", "not one of"),
        ({"stage": "overdue"}, "stage", "not one of"),
        ({"schema": "dunning.intent/2"}, "schema", "unsupported schema"),
        ({"currency": "rmb"}, "currency", "ISO 4217"),
        ({"template.extra": "x"}, "template", "unknown field"),
        ({"recipient.phone": None}, "recipient", "needs phone"),
        ({"expires_at": "2026-11-27T00:00:00+00:00"}, "expires_at", "later than created_at"),
    ],
)
def test_strict_decoding_names_the_field(
    changes: dict[str, object], field: str | None, fragment: str
) -> None:
    with pytest.raises(DecodeError) as info:
        decode_intent(_body(**changes))
    assert info.value.field == field
    assert fragment in str(info.value)


def test_missing_field_is_named() -> None:
    data = intent_to_dict(make_intent())
    del data["trace_id"]
    with pytest.raises(DecodeError, match="trace_id: missing required field"):
        decode_intent(json.dumps(data).encode())


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "expected an object"),
        (b"x" * 70_000, "limit"),
    ],
)
def test_garbage_bodies_are_rejected_with_a_reason(body: bytes, fragment: str) -> None:
    with pytest.raises(DecodeError, match=fragment):
        decode_intent(body)
