"""The strategy file: stage bands, steps, variants and precise errors."""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from dunning.errors import ConfigError
from dunning.intents import Channel, Stage
from dunning.producers.strategy import Step, load_strategy, parse_strategy

CONFIG = Path(__file__).resolve().parents[2] / "config" / "strategy.toml"


def minimal(**variant_extra: Any) -> dict[str, Any]:
    return {
        "strategy": {"name": "t"},
        "stages": {
            "pre_due": {"from_days": -5, "to_days": 0},
            "early": {"from_days": 1, "to_days": 30},
            "mid": {"from_days": 31, "to_days": 60},
            "late": {"from_days": 61},
        },
        "variants": {
            "champion": {
                "weight": 1,
                "steps": [
                    {
                        "id": "e.sms",
                        "stage": "early",
                        "channel": "sms",
                        "template": "t",
                        "days": [1],
                    }
                ],
                **variant_extra,
            }
        },
    }


def test_shipped_strategy_loads() -> None:
    strategy = load_strategy(CONFIG)
    assert strategy.name == "standard"
    assert [v.name for v in strategy.variants] == ["champion", "challenger"]
    assert {b.stage for b in strategy.stages} == set(Stage)


@pytest.mark.parametrize(
    ("days_past_due", "stage"),
    [
        (-6, None),
        (-5, Stage.PRE_DUE),
        (0, Stage.PRE_DUE),
        (1, Stage.EARLY),
        (30, Stage.EARLY),
        (31, Stage.MID),
        (60, Stage.MID),
        (61, Stage.LATE),
        (5000, Stage.LATE),
    ],
)
def test_stage_boundaries(days_past_due: int, stage: Stage | None) -> None:
    band = load_strategy(CONFIG).stage_for(days_past_due)
    assert (band.stage if band else None) == stage


def test_day_of_stage_counts_from_the_band_start() -> None:
    strategy = parse_strategy(minimal())
    mid = strategy.stage_for(31)
    assert mid is not None
    assert mid.day_of_stage(31) == 1
    pre = strategy.stage_for(-5)
    assert pre is not None
    assert pre.day_of_stage(0) == 6


def test_step_days_and_repeats() -> None:
    step = Step("s", Stage.LATE, Channel.VOICE, "t", days=(3,), every_days=14)
    assert [d for d in range(1, 50) if step.due_on(d)] == [3, 17, 31, 45]
    once = Step("s", Stage.EARLY, Channel.SMS, "t", days=(1, 3, 7))
    assert [d for d in range(1, 30) if once.due_on(d)] == [1, 3, 7]


def test_variant_split_is_stable_and_follows_weights() -> None:
    strategy = load_strategy(CONFIG)
    ids = [f"acct-{i}" for i in range(20_000)]
    first = [strategy.variant_for(i).name for i in ids]
    reloaded = load_strategy(CONFIG)
    again = [reloaded.variant_for(i).name for i in ids]
    assert first == again
    share = Counter(first)["challenger"] / len(ids)
    weights = {v.name: v.weight for v in strategy.variants}
    expected = weights["challenger"] / sum(weights.values())
    assert abs(share - expected) < 0.02


def test_variant_split_does_not_use_python_hash() -> None:
    # sha256 of "standard\x1facct-1": the same on every host and interpreter run.
    strategy = load_strategy(CONFIG)
    assert strategy.variant_for("acct-1").name == strategy.variant_for("acct-1").name
    one_variant = parse_strategy(minimal())
    assert {one_variant.variant_for(str(i)).name for i in range(100)} == {"champion"}


def test_conditions_parse() -> None:
    data = minimal()
    data["variants"]["champion"]["steps"].append(
        {
            "id": "e.call",
            "stage": "early",
            "channel": "voice",
            "template": "c",
            "days": [3],
            "if_no_delivered": {"channel": "sms", "within_days": 2},
        }
    )
    data["variants"]["champion"]["steps"].append(
        {
            "id": "m.letter",
            "stage": "mid",
            "channel": "letter",
            "template": "l",
            "days": [10],
            "legal": True,
            "if_unanswered_calls": {"at_least": 3},
        }
    )
    strategy = parse_strategy(data)
    call, letter = strategy.variants[0].steps[1:]
    assert call.if_no_delivered is not None
    assert call.if_no_delivered.channel is Channel.SMS
    assert call.if_no_delivered.within_days == 2
    assert letter.if_unanswered_calls is not None
    assert letter.if_unanswered_calls.at_least == 3
    assert letter.legal is True


def _error(data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse_strategy(data, "strategy.toml")
    return str(info.value)


def _step(**changes: Any) -> dict[str, Any]:
    data = minimal()
    data["variants"]["champion"]["steps"][0].update(changes)
    return data


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        (_step(channel="fax"), ["[variants.champion.steps #1]", "'channel'", "'fax'"]),
        (_step(stage="later"), ["'stage'", "'later'"]),
        (_step(days=[]), ["'days'"]),
        (_step(days=[0]), ["'days'"]),
        (_step(every_days=0), ["'every_days'", "at least 1"]),
        (_step(colour="red"), ["unknown key(s) colour"]),
        (_step(if_no_delivered={"channel": "sms"}), ["if_no_delivered", "'within_days'"]),
        (_step(legal="yes"), ["'legal'", "expected bool"]),
        (minimal(weight=0), ["[variants.champion]", "'weight'"]),
        (minimal(stop_if=["bored"]), ["'stop_if'", "'bored'"]),
    ],
)
def test_errors_name_file_table_and_key(data: dict[str, Any], fragments: list[str]) -> None:
    message = _error(data)
    assert message.startswith("strategy.toml: ")
    for fragment in fragments:
        assert fragment in message


def test_overlapping_stages_are_refused() -> None:
    data = minimal()
    data["stages"]["early"]["to_days"] = 31
    assert "early overlaps mid" in _error(data)


def test_open_ended_stage_must_be_last() -> None:
    data = minimal()
    del data["stages"]["mid"]["to_days"]
    assert "mid overlaps late" in _error(data)


def test_duplicate_step_ids_are_refused() -> None:
    data = minimal()
    data["variants"]["champion"]["steps"].append(dict(data["variants"]["champion"]["steps"][0]))
    assert "'e.sms' appears twice" in _error(data)


def test_condition_longer_than_history_is_refused() -> None:
    data = _step(if_unanswered_calls={"at_least": 3, "within_days": 120})
    assert "history_days" in _error(data)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_strategy(tmp_path / "nope.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[strategy\nname=1", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_strategy(broken)


def test_shipped_file_is_plain_toml() -> None:
    with CONFIG.open("rb") as handle:
        assert "variants" in tomllib.load(handle)
