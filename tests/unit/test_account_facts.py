"""The ``facts`` of a bureau intent: required there, refused elsewhere, decoded strictly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dunning.errors import DecodeError
from dunning.intents import Channel, decode_intent, encode_intent, intent_to_dict
from tests.factories import make_intent


def body(channel: Channel = Channel.BUREAU, **facts: Any) -> bytes:
    data = intent_to_dict(make_intent(channel))
    if facts:
        data["facts"] = {**data.get("facts", {}), **facts}
    return json.dumps(data).encode()


def test_a_bureau_intent_round_trips_with_its_facts() -> None:
    intent = make_intent(Channel.BUREAU)
    assert decode_intent(encode_intent(intent)) == intent
    assert "facts" not in intent_to_dict(make_intent(Channel.SMS))


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"terms": "7Y"}, "facts.terms", "is not 1-999 months, REV or LOC"),
        ({"account_type": "mortgage"}, "facts.account_type", "is not one of"),
        ({"principal": "-1"}, "facts.principal", "must be a finite, non-negative amount"),
        ({"due_date": "01/02/2026"}, "facts.due_date", "is not a YYYY-MM-DD date"),
        ({"paid": "yes"}, "facts.paid", "expected true or false"),
        ({"delete_reason": "fraud"}, "facts.delete_reason", "is not one of"),
        ({"ssn": "123"}, "facts", "unknown field(s) ssn"),
    ],
)
def test_bad_facts_are_refused_naming_the_field(
    changes: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_intent(body(**changes))
    assert caught.value.field == field
    assert message in caught.value.reason


def test_a_bureau_intent_without_facts_and_a_contact_with_facts_are_refused() -> None:
    data = intent_to_dict(make_intent(Channel.BUREAU))
    del data["facts"]
    with pytest.raises(DecodeError, match="a bureau intent needs the account's facts"):
        decode_intent(json.dumps(data).encode())
    sms = intent_to_dict(make_intent(Channel.SMS))
    sms["facts"] = intent_to_dict(make_intent(Channel.BUREAU))["facts"]
    with pytest.raises(DecodeError, match="a sms intent carries no facts"):
        decode_intent(json.dumps(sms).encode())
