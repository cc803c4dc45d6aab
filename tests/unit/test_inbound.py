"""Opt-out keyword parsing: every keyword in its variants, and near-misses that must not match."""

from __future__ import annotations

import pytest

from dunning.receipts.inbound import (
    OPT_OUT_KEYWORDS,
    classify_inbound,
    confirmation_text,
    normalise_reply,
)

KEYWORDS = ["STOP", "QUIT", "END", "REVOKE", "OPT OUT", "CANCEL", "UNSUBSCRIBE", "退订", "TD", "T"]


@pytest.mark.parametrize("keyword", KEYWORDS)
@pytest.mark.parametrize(
    "dress",
    ["{}", "  {}  ", "{}!", "\u201c{}.\u201d", "{}。", "\t{}\n", "...{}?!"],
)
def test_every_keyword_opts_out_in_any_case_and_punctuation(keyword: str, dress: str) -> None:
    for text in (
        dress.format(keyword),
        dress.format(keyword.lower()),
        dress.format(keyword.title()),
    ):
        decision = classify_inbound(text)
        assert decision.kind == "opt_out", text
        assert decision.keyword == keyword


@pytest.mark.parametrize("text", ["opt-out", "Opt_Out", "opt   out", "ＳＴＯＰ", "退订！", "td~"])
def test_spelling_variants_fold_onto_the_keyword(text: str) -> None:
    assert classify_inbound(text).kind == "opt_out"


def test_chinese_keywords_hint_a_chinese_confirmation() -> None:
    assert classify_inbound("退订").locale_hint == "zh-CN"
    assert classify_inbound("td").locale_hint == "zh-CN"
    assert classify_inbound("STOP").locale_hint is None


@pytest.mark.parametrize("text", ["START", "start", " Unstop! "])
def test_start_and_unstop_resubscribe(text: str) -> None:
    assert classify_inbound(text).kind == "opt_in"


@pytest.mark.parametrize(
    "text",
    [
        "stop calling me at work",
        "Please stop texting me",
        "I want to unsubscribe",
        "不要再给我发短信了",
        "do not call me again",
    ],
)
def test_sentences_go_to_an_agent_flagged_as_possible_opt_outs(text: str) -> None:
    decision = classify_inbound(text)
    assert decision.kind == "agent"
    assert decision.keyword is None
    assert decision.possible_opt_out is True


@pytest.mark.parametrize(
    "text",
    ["STOPP", "TT", "T1", "TD bank", "yes", "I paid yesterday", "OK", "", "   ", "END OF MONTH"],
)
def test_near_misses_do_not_opt_out(text: str) -> None:
    assert classify_inbound(text).kind == "agent"


def test_plain_messages_are_not_flagged() -> None:
    decision = classify_inbound("I paid yesterday, please check")
    assert decision.kind == "agent"
    assert decision.possible_opt_out is False


def test_normalise_keeps_inner_text_and_trims_edges() -> None:
    assert normalise_reply("  -- opt-out!! ") == "OPT OUT"
    assert normalise_reply("stop calling") == "STOP CALLING"
    assert "STOP CALLING" not in OPT_OUT_KEYWORDS


def test_confirmation_is_the_prefix_and_the_confirmation_only() -> None:
    zh = confirmation_text("zh-CN", "【XX消费金融】")
    en = confirmation_text("en-US", "Example Consumer Finance: ")
    assert zh.startswith("【XX消费金融】")
    assert "退订" in zh
    assert en.startswith("Example Consumer Finance: ")
    assert "unsubscribed" in en
    for text in (zh, en):
        assert "http" not in text
        assert not any(ch.isdigit() for ch in text)  # no amount, no number, no link
