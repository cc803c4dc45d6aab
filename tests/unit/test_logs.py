"""PII masking of log lines: by pattern for any text, by field for the person being handled."""

from __future__ import annotations

from typing import Any

from dunning.logs import PersonalData, hide, mask_pii, reveal


def masked(**event: Any) -> dict[str, Any]:
    return dict(mask_pii(None, "warning", {"event": "x", **event}))


def test_numbers_in_any_spelling_are_masked_by_pattern() -> None:
    out = masked(reason="'+1 415-555-0123' and '13800138000' and +8613800138000 failed.")
    assert out["reason"] == "'+1******0123' and '*******8000' and +86*******8000 failed."


def test_ids_dates_and_decimals_keep_their_digits() -> None:
    text = "intent 1234567890abcdef at 2026-11-28T10:00:00.123456+00:00 took 0.123456789 s"
    assert masked(reason=text)["reason"] == text


def test_the_handled_persons_values_are_replaced_in_every_value_while_hidden() -> None:
    person = PersonalData(
        name="Jane Quincy Doe",
        phone="+14155550123",
        email="jane.doe@example.org",
        address_lines=["1 Main St\nApt 2"],
    )
    token = hide(person)
    try:
        out = masked(
            reason="550 5.1.1 <Jane.Doe@example.org>: no such user jane.doe",
            exception="KeyError: 'Jane Quincy Doe' at 1 Main St, call (415) 555-0123",
            detail={"why": "Dear Jane, your delivery"},
        )
    finally:
        reveal(token)
    assert out["reason"] == "550 5.1.1 <<email>>: no such user <email>"
    assert out["exception"] == "KeyError: '<name>' at <address>, call (<phone>"
    assert out["detail"] == {"why": "Dear <name>, your delivery"}
    assert masked(reason="Dear Jane")["reason"] == "Dear Jane"  # revealed again afterwards
