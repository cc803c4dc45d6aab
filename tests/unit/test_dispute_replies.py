"""Which replies are disputes (docs/legal.md, "Disputes"): whole-message keywords in English
and Chinese, email replies above the quoted text, and links only with their token."""

from __future__ import annotations

import pytest

from dunning.receipts.disputes import dispute_token, verify_dispute_token
from dunning.receipts.inbound import classify_inbound, is_dispute_reply


@pytest.mark.parametrize(
    ("body", "keyword", "hint"),
    [
        ("DISPUTE", "DISPUTE", None),
        ("  i dispute this debt. ", "I DISPUTE THIS DEBT", None),
        ("Not my debt!", "NOT MY DEBT", None),
        ("异议", "异议", "zh-CN"),
        ("我有异议。", "我有异议", "zh-CN"),
        ("ＤＩＳＰＵＴＥ", "DISPUTE", None),
    ],
)
def test_whole_message_dispute_keywords(body: str, keyword: str, hint: str | None) -> None:
    decision = classify_inbound(body)
    assert (decision.kind, decision.keyword, decision.locale_hint) == ("dispute", keyword, hint)


@pytest.mark.parametrize("body", ["I dispute calling me at work", "有异议吗？请解释", "STOP"])
def test_sentences_and_other_keywords_are_not_disputes(body: str) -> None:
    assert classify_inbound(body).kind != "dispute"


def test_an_email_disputes_above_the_quote_only() -> None:
    assert is_dispute_reply("Hello,\n\nDispute\n\nJane")
    assert is_dispute_reply("异议\n> 您的账户已逾期")
    assert not is_dispute_reply("I will pay Friday.\n> reply DISPUTE to dispute")
    assert not is_dispute_reply("Thanks\nOn Mon, 2 Nov 2026, Collections wrote:\nDISPUTE")


def test_the_dispute_link_token_is_bound_to_the_intent_and_apart_from_unsubscribe() -> None:
    token = dispute_token("secret", "a" * 32)
    assert verify_dispute_token("secret", "a" * 32, token)
    assert not verify_dispute_token("secret", "b" * 32, token)
    assert not verify_dispute_token("other", "a" * 32, token)
    assert not verify_dispute_token("secret", "a" * 32, "é" * 32)
