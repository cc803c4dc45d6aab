"""The bureau step's gate (docs/bureau.md, "The gate") with the shipped compliance.toml."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest

from dunning.account_facts import AccountFacts
from dunning.compliance import ComplianceGate
from dunning.intents import Channel, ContactIntent, Stage, TemplateRef
from dunning.records import DialOutcome, GateDecision
from tests.factories import make_intent
from tests.unit.test_compliance_helpers import (
    NY,
    PACKS,
    SHANGHAI,
    attempt,
    history,
    local,
    suppression,
)

GATE = ComplianceGate(PACKS, jitter_s=0)
US_NOON = local(NY, 2026, 7, 8, 12, 0)
CN_NOON = local(SHANGHAI, 2026, 11, 28, 12, 0)


def bureau(jurisdiction: str = "US", role: str = "third_party", **facts: object) -> ContactIntent:
    locale = "zh-CN" if jurisdiction == "CN" else "en-US"
    base = AccountFacts(role, "collection" if role == "third_party" else "installment",
                        Decimal("900.00"), US_NOON.date() - timedelta(days=90))  # fmt: skip
    return make_intent(
        Channel.BUREAU, jurisdiction=jurisdiction, stage=Stage.LATE, step="late.bureau",
        template=TemplateRef("credit_bureau_report", locale),
        facts=dataclasses.replace(base, **facts),  # type: ignore[arg-type]
    )  # fmt: skip


def notice(intent: ContactIntent, days_ago: float, **kwargs: object) -> list[object]:
    now = CN_NOON if intent.jurisdiction == "CN" else US_NOON
    return [attempt(intent, now - timedelta(days=days_ago), channel=Channel.EMAIL,
                    template="credit_bureau_notice", **kwargs)]  # type: ignore[arg-type]  # fmt: skip


def verdict(intent: ContactIntent, prior: list[object] = (), stops: tuple[str, ...] = (),
            at: object = None) -> GateDecision:  # type: ignore[assignment]  # fmt: skip
    now = at or (CN_NOON if intent.jurisdiction == "CN" else US_NOON)
    marks = [suppression(intent, reason, debt_id=intent.debt_id) for reason in stops]
    return GATE.decide(intent, history(intent, prior, marks), now)  # type: ignore[arg-type]


def decide(intent: ContactIntent, prior: list[object] = (), stops: tuple[str, ...] = (),
           at: object = None) -> tuple[str, str, dict[str, str]]:  # type: ignore[assignment]  # fmt: skip
    d = verdict(intent, prior, stops, at)
    return d.action, d.rule_id, d.inputs


def test_third_party_without_any_notice_is_refused_with_1006_30a() -> None:
    assert decide(bureau())[:2] == ("refuse", "US.stage.late.1006.30a")


def test_third_party_waits_fourteen_days_after_a_mailed_notice() -> None:
    intent = bureau()
    d = verdict(intent, notice(intent, 10))
    assert (d.action, d.rule_id) == ("defer", "US.stage.late.1006.30a")
    assert d.until == US_NOON + timedelta(days=4)
    assert decide(intent, notice(intent, 14))[0] == "allow"


def test_an_undeliverable_notice_does_not_count() -> None:
    intent = bureau()
    bounced = notice(intent, 30, outcome=DialOutcome.FAILED)
    assert decide(intent, bounced)[:2] == ("refuse", "US.stage.late.1006.30a")


def test_cn_needs_a_notice_before_reporting_but_no_wait() -> None:
    intent = bureau("CN", role="first_party")
    assert decide(intent)[:2] == ("refuse", "CN.stage.late.credit_bureau_notice")
    assert decide(intent, notice(intent, 0.1))[0] == "allow"


def test_us_first_party_may_furnish_first_and_owes_the_notice_within_30_days() -> None:
    intent = bureau(role="first_party")
    action, rule, inputs = decide(intent)
    assert (action, rule) == ("allow", "US.bureau.fcra623a7")
    assert inputs["notice_due_by"] == (US_NOON + timedelta(days=30)).isoformat()
    # Once 30 days have passed since the first furnishing with no notice, it is refused.
    first = [attempt(intent, US_NOON - timedelta(days=31), channel=Channel.BUREAU)]
    assert decide(intent, first)[:2] == ("refuse", "US.stage.late.1006.30a")
    # A first furnishing 10 days ago keeps the original deadline.
    recent = [attempt(intent, US_NOON - timedelta(days=10), channel=Channel.BUREAU)]
    assert decide(intent, recent)[2]["notice_due_by"] == (US_NOON + timedelta(days=20)).isoformat()


@pytest.mark.parametrize("jurisdiction", ["US", "CN"])
def test_a_disputed_account_is_reported_only_with_xb(jurisdiction: str) -> None:
    intent = bureau(jurisdiction, role="first_party")
    prior = notice(intent, 20)
    action, _, inputs = decide(intent, prior, ("dispute",))
    assert (action, inputs["compliance_condition"]) == ("allow", "XB")
    assert intent.facts is not None
    flagged = dataclasses.replace(intent, facts=dataclasses.replace(intent.facts, disputed=True))
    assert decide(flagged, prior)[2]["compliance_condition"] == "XB"
    assert decide(intent, prior)[2]["compliance_condition"] == ""


@pytest.mark.parametrize("reason", ["bankrupt", "deceased"])
def test_bankrupt_and_deceased_are_excluded_with_their_rule(reason: str) -> None:
    intent = bureau()
    assert decide(intent, notice(intent, 20), (reason,))[:2] == (
        "refuse", f"US.bureau.exclude.{reason}",
    )  # fmt: skip


@pytest.mark.parametrize("reason", ["cease", "paid", "opt_out"])
def test_cease_paid_and_opt_out_do_not_stop_the_record(reason: str) -> None:
    intent = bureau()
    assert decide(intent, notice(intent, 20), (reason,))[0] == "allow"


def test_a_deletion_goes_even_without_a_notice() -> None:
    intent = bureau(delete_reason="identity_theft")
    action, _, inputs = decide(intent)
    assert (action, inputs["delete_reason"]) == ("allow", "identity_theft")


def test_no_contact_window_applies_to_a_record() -> None:
    intent = bureau()
    three_am = local(NY, 2026, 7, 8, 3, 0)
    prior = [attempt(intent, three_am - timedelta(days=20), channel=Channel.LETTER,
                     template="validation_notice")]  # fmt: skip
    assert decide(intent, prior, at=three_am)[0] == "allow"


def test_a_pack_without_furnishing_rules_reports_nothing() -> None:
    intent = dataclasses.replace(bureau(), jurisdiction="UK", timezone="Europe/London")
    assert decide(intent)[:2] == ("refuse", "UK.bureau.no_rules")
