"""Risk segments and the scorecard: each account down its configured path; bad rules refused."""

from __future__ import annotations

import copy
import dataclasses
import math
import tomllib
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dunning.errors import ConfigError
from dunning.intents import PostalAddress
from dunning.producers import Account, Evaluation, NoOutcomes, evaluate
from dunning.producers.outcomes import InMemoryOutcomes, OutcomeKind
from dunning.producers.scorecard import load_scorecard, parse_scorecard
from dunning.producers.strategy import load_strategy, parse_strategy

CONFIG = Path(__file__).resolve().parents[2] / "config"
AS_OF = date(2026, 11, 20)
NOW = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


def account(account_id: str, days_past_due: int, **changes: Any) -> Account:
    base = Account(
        account_id=account_id,
        person_id=f"P-{account_id}",
        name="Zhang Wei",
        phone="+8613800138000",
        email="zhang.wei@example.com",
        address=PostalAddress(("1 Century Avenue",), "Shanghai", "200120", "CN"),
        timezone="Asia/Shanghai",
        locale="zh-CN",
        jurisdiction="CN",
        collector_role="first_party",
        currency="CNY",
        amount_due=Decimal("800"),
        principal=Decimal("3000"),
        due_date=AS_OF - timedelta(days=days_past_due),
        last_payment_date=AS_OF - timedelta(days=days_past_due + 30),
    )
    return dataclasses.replace(base, **changes)


def segmented() -> dict[str, Any]:
    with (CONFIG / "strategy.segmented.toml").open("rb") as f:
        return tomllib.load(f)


def by_id(evaluations: list[Evaluation]) -> dict[str, Evaluation]:
    return {e.account.account_id: e for e in evaluations}


def test_each_account_goes_down_its_configured_path() -> None:
    strategy = load_strategy(CONFIG / "strategy.segmented.toml")
    book = [
        # Never paid since the first due date: first-payment default, straight to the challenger.
        account("FPD", 4, last_payment_date=None, amount_due=Decimal("3000")),
        # Paid before, small balance, early: the built-in card scores it low risk.
        account("LOW", 3),
        # The lender's own score says high risk.
        account("HIGH", 3, score=480, score_model="bureau-v2"),
    ]
    result = by_id(list(evaluate(book, strategy, as_of=AS_OF, now=NOW, outcomes=NoOutcomes())))

    fpd, low, high = result["FPD"], result["LOW"], result["HIGH"]
    assert (fpd.segment, fpd.variant) == ("first_payment_default", "challenger")
    assert fpd.segment_rule == "first_payment_default = true"
    assert fpd.score is not None
    assert any("R02" in r for r in fpd.score.reasons)
    assert [i.step for i in fpd.intents] == ["early.call"]  # challenger calls on day 4

    assert (low.segment, low.segment_rule) == (
        "low_risk_early",
        "days_past_due 1..30, score_band in [low_risk]",
    )
    assert low.score is not None
    assert low.score.value >= 650
    # Day 3 of champion (its hash) has early.sms and early.call; a low-risk account gets no call.
    assert low.variant == "champion"
    assert [i.step for i in low.intents] == ["early.sms"]
    [skip] = low.skipped
    assert (skip.step, skip.reason, skip.rule_id) == (
        "early.call",
        "segment: for default, first_payment_default, high_risk",
        "segment",
    )

    assert (high.segment, high.variant) == ("high_risk", "challenger")
    assert high.score is not None
    assert (high.score.value, high.score.model) == (480, "bureau-v2")


def test_without_segments_every_account_is_default_and_keeps_its_variant() -> None:
    plain = load_strategy(CONFIG / "strategy.toml")
    assert plain.segments == ()
    assert plain.scorecard is None
    book = [account(f"A-{n}", 3) for n in range(40)]
    for evaluation in evaluate(book, plain, as_of=AS_OF, now=NOW, outcomes=NoOutcomes()):
        assert evaluation.segment == "default"
        assert evaluation.score is None
        assert evaluation.variant == plain.variant_for(evaluation.account.account_id).name


def test_broken_promises_and_contact_rate_rules_read_the_history() -> None:
    data = segmented()
    data["segments"].insert(
        0,
        {"name": "promise_breakers", "broken_promises": {"from": 2}, "contact_rate": {"to": 0.5}},
    )
    strategy = parse_strategy(data, "s.toml")
    history = InMemoryOutcomes()
    for days_ago in (10, 40):
        history.add("B", OutcomeKind.BROKEN_PROMISE, NOW - timedelta(days=days_ago))
    history.add("B", OutcomeKind.UNANSWERED_CALL, NOW - timedelta(days=2))
    history.add("B", OutcomeKind.BROKEN_PROMISE, NOW - timedelta(days=120))  # too old
    history.add("C", OutcomeKind.BROKEN_PROMISE, NOW - timedelta(days=10))
    book = [account("B", 3), account("C", 3)]
    result = by_id(list(evaluate(book, strategy, as_of=AS_OF, now=NOW, outcomes=history)))
    assert result["B"].segment == "promise_breakers"
    assert result["C"].segment != "promise_breakers"


def test_manual_segment_column_matches() -> None:
    data = segmented()
    data["segments"].insert(0, {"name": "vip", "segment": ["vip"]})
    strategy = parse_strategy(data, "s.toml")
    [evaluation] = evaluate(
        [account("V", 3, segment="vip", last_payment_date=None)],
        strategy,
        as_of=AS_OF,
        now=NOW,
        outcomes=NoOutcomes(),
    )
    assert (evaluation.segment, evaluation.segment_rule) == ("vip", "segment in [vip]")


def refused(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_strategy(data, "strategy.toml")
    return str(caught.value)


def test_overlapping_score_bands_are_refused_with_the_key() -> None:
    data = segmented()
    data["score_bands"]["medium_risk"]["from"] = 500
    message = refused(data)
    assert message.startswith("strategy.toml: [] key 'score_bands'")
    assert "high_risk overlaps medium_risk" in message


def test_an_unreachable_segment_is_refused_naming_the_rule_that_covers_it() -> None:
    data = segmented()
    data["segments"].append(
        {"name": "fpd_late", "first_payment_default": True, "days_past_due": {"from": 61}}
    )
    message = refused(data)
    assert "[segments #4] key 'name'" in message
    assert "'fpd_late' is unreachable" in message
    assert "'first_payment_default'" in message


def test_a_step_naming_an_unknown_segment_is_refused() -> None:
    data = segmented()
    data["variants"]["champion"]["steps"][0]["segments"] = ["high_rsik"]
    message = refused(data)
    assert "[variants.champion.steps #1] key 'segments'" in message
    assert "high_rsik" in message


@pytest.mark.parametrize("attribute", ["sex", "ethnicity", "religion", "age"])
def test_a_segment_rule_on_a_protected_attribute_is_refused(attribute: str) -> None:
    data = segmented()
    data["segments"][0][attribute] = ["x"]
    message = refused(data)
    assert f"[segments #1] key '{attribute}': is a protected attribute" in message


def test_a_scorecard_on_a_protected_attribute_is_refused() -> None:
    with (CONFIG.parent / "dunning" / "producers" / "scorecard_builtin.toml").open("rb") as f:
        card = tomllib.load(f)
    card["characteristic"].append({"name": "religion", "reason": "R9", "text": "x", "bins": []})
    with pytest.raises(ConfigError, match=r"\[characteristic #7\] key 'religion': is a protected"):
        parse_scorecard(card, "card.toml")


def test_overlapping_scorecard_bins_are_refused() -> None:
    card = copy.deepcopy(_one_bin_card(math.log(2)))
    card["characteristic"][0]["bins"].append({"from": 5, "to": 20, "log_odds": 0})
    with pytest.raises(ConfigError, match=r"\[characteristic #1\] key 'bins': bin .* overlaps"):
        parse_scorecard(card, "card.toml")


def _one_bin_card(log_odds: float) -> dict[str, Any]:
    return {
        "scorecard": {
            "name": "t",
            "base_score": 600,
            "base_odds": 50,
            "pdo": 20,
            "intercept": math.log(50),
        },
        "characteristic": [
            {
                "name": "days_past_due",
                "reason": "R01",
                "text": "late",
                "bins": [
                    {"to": 10, "log_odds": log_odds},
                    {"from": 11, "log_odds": 0},
                ],
            }
        ],
    }


def test_scaling_adds_pdo_points_when_the_odds_double() -> None:
    card = parse_scorecard(_one_bin_card(math.log(2)), "card.toml")
    # At the base odds (50:1) the score is base_score; doubling them adds pdo points.
    assert card.score({"days_past_due": 30}).value == 600
    assert card.score({"days_past_due": 5}).value == 620
    assert card.score({"days_past_due": 30}).reasons == ("R01 late",)
    assert card.score({"days_past_due": 5}).reasons == ()


def test_the_builtin_card_ranks_a_first_payment_default_below_a_payer() -> None:
    card = load_scorecard()
    common = {"days_past_due": 5.0, "balance": 800.0, "paid_share": 0.3, "broken_promises": 0.0}
    payer = card.score({**common, "first_payment_default": 0.0, "contact_rate": 0.8})
    defaulter = card.score({**common, "first_payment_default": 1.0, "contact_rate": 0.8})
    assert defaulter.value < payer.value
    assert defaulter.reasons[0].startswith("R02")
