"""Request signatures: Twilio's scheme computed once per request, matching Twilio's validator."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from dunning.channels.email_message import unsubscribe_token, verify_unsubscribe_token
from dunning.receipts.signatures import FormParams, sign_body, verify_body, verify_twilio

TOKEN = "twilio-auth-token"
URL = "https://hooks.example.com/twilio/status?intent_id=abc"

_TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=8)


@given(st.lists(st.tuples(_TEXT, _TEXT), max_size=12))
def test_twilio_signatures_are_accepted_exactly_when_twilios_validator_accepts(
    pairs: list[tuple[str, str]],
) -> None:
    params = FormParams(pairs)
    signature = RequestValidator(TOKEN).compute_signature(URL, params)
    assert verify_twilio(TOKEN, URL, params, signature)
    assert RequestValidator(TOKEN).validate(URL, params, signature)
    assert not verify_twilio("another-token", URL, params, signature)


def test_repeated_fields_are_signed_with_their_distinct_values_sorted() -> None:
    params = FormParams([("b", "2"), ("a", "x"), ("b", "1"), ("b", "2")])
    assert params.getlist("b") == ["2", "1", "2"]
    assert list(params) == ["b", "a"]
    assert params.as_dict() == {"b": "2", "a": "x"}
    signature = RequestValidator(TOKEN).compute_signature(URL, params)
    assert verify_twilio(TOKEN, URL, params, signature)


def test_the_url_is_tried_with_and_without_its_default_port() -> None:
    params = FormParams([("MessageSid", "SM1")])
    with_port = "https://hooks.example.com:443/twilio/status"
    signature = RequestValidator(TOKEN).compute_signature(with_port, params)
    assert verify_twilio(TOKEN, "https://hooks.example.com/twilio/status", params, signature)


def test_missing_or_non_ascii_signatures_are_false_not_errors() -> None:
    params = FormParams([("MessageSid", "SM1")])
    assert not verify_twilio(TOKEN, URL, params, None)
    assert not verify_twilio(TOKEN, URL, params, "")
    assert not verify_twilio(TOKEN, URL, params, "é" * 28)
    assert not verify_body("secret", b"{}", "sha256=" + "é" * 64)
    assert verify_body("secret", b"{}", sign_body("secret", b"{}"))
    assert not verify_unsubscribe_token("secret", "intent", "é" * 32)
    assert verify_unsubscribe_token("secret", "intent", unsubscribe_token("secret", "intent"))
