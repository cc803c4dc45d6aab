"""Suppressions and stage gates (docs/compliance.md), one case per trigger with its source."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest

from dunning.compliance import ComplianceGate, load_packs
from dunning.intents import Channel, ContactIntent, Stage, TemplateRef
from dunning.records import DialOutcome
from tests.factories import make_intent
from tests.unit.test_compliance_helpers import (
    CONFIG,
    NY,
    PACKS,
    SHANGHAI,
    attempt,
    history,
    local,
    suppression,
)

#: The channels that contact someone (the bureau step reports instead: docs/bureau.md).
CONTACT_CHANNELS = [c for c in Channel if c is not Channel.BUREAU]
GATE = ComplianceGate(PACKS, jitter_s=0)
US_NOON = local(NY, 2026, 7, 8, 12, 0)
CN_NOON = local(SHANGHAI, 2026, 11, 28, 12, 0)


def test_1006_6e_sms_opt_out_stops_sms_only() -> None:
    sms = make_intent(Channel.SMS, jurisdiction="US")
    stop = [suppression(sms, "opt_out", channel=Channel.SMS)]
    decision = GATE.decide(sms, history(sms, suppressions=stop), US_NOON)
    assert (decision.action, decision.rule_id) == ("suppress", "US.suppress.opt_out")
    call = dataclasses.replace(sms, channel=Channel.VOICE)
    assert GATE.decide(call, history(call, suppressions=stop), US_NOON).action == "allow"


@pytest.mark.parametrize("reason", ["bounced", "complaint"])
def test_an_email_bounce_or_complaint_stops_email_only(reason: str) -> None:
    email = make_intent(Channel.EMAIL, jurisdiction="US")
    stop = [suppression(email, reason, channel=Channel.EMAIL)]
    decision = GATE.decide(email, history(email, suppressions=stop), US_NOON)
    assert (decision.action, decision.rule_id) == ("suppress", f"US.suppress.{reason}")
    for channel in (Channel.SMS, Channel.VOICE, Channel.LETTER):
        other = dataclasses.replace(email, channel=channel)
        assert GATE.decide(other, history(other, suppressions=stop), US_NOON).action == "allow"


def test_miit_opt_out_without_channel_stops_every_channel() -> None:
    intent = make_intent(Channel.EMAIL)
    stop = [suppression(intent, "opt_out")]
    for channel in CONTACT_CHANNELS:
        one = dataclasses.replace(intent, channel=channel)
        assert GATE.decide(one, history(one, suppressions=stop), CN_NOON).action == "suppress"


def test_1692c_c_cease_stops_everything_but_permitted_notices() -> None:
    intent = make_intent(Channel.LETTER, jurisdiction="US")
    cease = [suppression(intent, "cease")]
    decision = GATE.decide(intent, history(intent, suppressions=cease), US_NOON)
    assert (decision.action, decision.rule_id) == ("suppress", "US.suppress.cease")
    notice = dataclasses.replace(intent, template=TemplateRef("cease_ack", "en-US"))
    assert GATE.decide(notice, history(notice, suppressions=cease), US_NOON).action == "allow"
    by_step = dataclasses.replace(intent, step="remedy_notice")
    assert GATE.decide(by_step, history(by_step, suppressions=cease), US_NOON).action == "allow"


def test_1006_38_dispute_pauses_that_debt_only() -> None:
    intent = make_intent(Channel.SMS, jurisdiction="US")
    dispute = [suppression(intent, "dispute", debt_id=intent.debt_id)]
    decision = GATE.decide(intent, history(intent, suppressions=dispute), US_NOON)
    assert (decision.action, decision.rule_id) == ("suppress", "US.suppress.dispute")
    other = dataclasses.replace(intent, debt_id="another-debt")
    assert GATE.decide(other, history(other, suppressions=dispute), US_NOON).action == "allow"


@pytest.mark.parametrize(
    "reason",
    ["attorney", "bankrupt", "deceased", "paid", "settled", "promise_to_pay", "hardship",
     "refusal_to_pay", "third_party_stop", "some_future_reason"],
)  # fmt: skip
def test_1692c_a2_and_status_suppressions_stop_contact(reason: str) -> None:
    intent = make_intent(Channel.VOICE)
    decision = GATE.decide(intent, history(intent, suppressions=[suppression(intent, reason)]),
                           CN_NOON)  # fmt: skip
    assert (decision.action, decision.rule_id) == ("suppress", f"CN.suppress.{reason}")
    assert decision.pack_version == "CN-2026.1"


def test_suppression_of_another_person_is_ignored() -> None:
    intent = make_intent(Channel.SMS)
    other = dataclasses.replace(suppression(intent, "deceased"), person_id="someone-else")
    assert GATE.decide(intent, history(intent, suppressions=[other]), CN_NOON).action == "allow"


def test_1006_26b_time_barred_debt_gets_no_lawyer_letter() -> None:
    letter = make_intent(Channel.LETTER, jurisdiction="US", stage=Stage.MID,
                         template=TemplateRef("lawyer_letter", "en-US"))  # fmt: skip
    barred = [suppression(letter, "time_barred", debt_id=letter.debt_id)]
    decision = GATE.decide(letter, history(letter, suppressions=barred), US_NOON)
    assert (decision.action, decision.rule_id) == ("suppress", "US.stage.time_barred.1006.26b")
    sms = make_intent(Channel.SMS, jurisdiction="US")
    sms = dataclasses.replace(sms, person_id=letter.person_id, debt_id=letter.debt_id)
    assert GATE.decide(sms, history(sms, suppressions=barred), US_NOON).action == "allow"


def test_1006_26b_time_barred_blocks_legal_wording_in_any_channel(tmp_path: Path) -> None:
    marked = tmp_path / "en-US" / "sms" / "legal_notice.txt.j2"
    marked.parent.mkdir(parents=True)
    marked.write_text("{# legal: true #}\nWe may take legal action.\n", encoding="utf-8")
    gate = ComplianceGate(load_packs(CONFIG, templates=tmp_path), jitter_s=0)
    sms = make_intent(Channel.SMS, jurisdiction="US", template=TemplateRef("legal_notice", "en-US"))
    barred = [suppression(sms, "time_barred")]
    decision = gate.decide(sms, history(sms, suppressions=barred), US_NOON)
    assert (decision.action, decision.rule_id) == ("suppress", "US.stage.time_barred.1006.26b")
    # Without the mark the same SMS is ordinary wording: time-barred debts still get reminders.
    plain = ComplianceGate(load_packs(CONFIG, templates=tmp_path / "none"), jitter_s=0)
    assert plain.decide(sms, history(sms, suppressions=barred), US_NOON).action == "allow"


def test_1006_26b_the_final_notice_is_legal_wording_by_its_template_mark() -> None:
    letter = make_intent(
        Channel.LETTER, jurisdiction="US", stage=Stage.LATE, step="late.final_notice",
        template=TemplateRef("final_notice", "en-US"),
    )  # fmt: skip
    barred = [suppression(letter, "time_barred", debt_id=letter.debt_id)]
    decision = GATE.decide(letter, history(letter, suppressions=barred), US_NOON)
    assert (decision.action, decision.rule_id) == ("suppress", "US.stage.time_barred.1006.26b")


def test_1006_26b_time_barred_applies_from_the_day_after_the_statute() -> None:
    letter = make_intent(
        Channel.LETTER, jurisdiction="US", stage=Stage.LATE,
        template=TemplateRef("final_notice", "en-US"),
    )  # fmt: skip
    barred_from = US_NOON + timedelta(hours=12)
    barred = [
        dataclasses.replace(
            suppression(letter, "time_barred", debt_id=letter.debt_id), starts_at=barred_from
        )
    ]
    assert GATE.decide(letter, history(letter, suppressions=barred), US_NOON).action == "allow"
    later = US_NOON + timedelta(days=1)
    assert GATE.decide(letter, history(letter, suppressions=barred), later).action == "suppress"


def test_a_promise_to_pay_suppresses_until_it_ends() -> None:
    sms = make_intent(Channel.SMS, jurisdiction="US")
    ends = US_NOON + timedelta(hours=3)
    promise = [
        dataclasses.replace(suppression(sms, "promise_to_pay", debt_id=sms.debt_id), until=ends)
    ]
    decision = GATE.decide(sms, history(sms, suppressions=promise), US_NOON)
    assert (decision.action, decision.rule_id) == ("suppress", "US.suppress.promise_to_pay")
    assert GATE.decide(sms, history(sms, suppressions=promise), ends).action == "allow"


def test_stage_mid_lawyer_letter_not_while_dispute_open() -> None:
    from dunning.compliance.suppressions import check_stage_gates

    letter = make_intent(Channel.LETTER, stage=Stage.MID)
    cn = PACKS.select("CN", CN_NOON)
    assert cn is not None
    dispute = history(letter, suppressions=[suppression(letter, "dispute")])
    decision = check_stage_gates(cn, letter, dispute, CN_NOON)
    assert decision is not None
    assert decision.rule_id == "CN.stage.mid.dispute_open"


def _bureau(jurisdiction: str = "US") -> ContactIntent:
    return make_intent(Channel.LETTER, jurisdiction=jurisdiction, stage=Stage.LATE,
                       template=TemplateRef("credit_bureau_report", "en-US"))  # fmt: skip


def test_1006_30a_credit_bureau_needs_a_logged_prior_notice() -> None:
    intent = _bureau()
    decision = GATE.decide(intent, history(intent), US_NOON)
    assert (decision.action, decision.rule_id) == ("refuse", "US.stage.late.1006.30a")


def test_1006_30a_notice_must_be_fourteen_days_old() -> None:
    intent = _bureau()
    sent = US_NOON - timedelta(days=10)
    notice = [attempt(intent, sent, channel=Channel.LETTER, template="validation_notice")]
    decision = GATE.decide(intent, history(intent, notice), US_NOON)
    assert (decision.action, decision.rule_id) == ("defer", "US.stage.late.1006.30a")
    assert decision.until == sent + timedelta(days=14)
    assert GATE.decide(intent, history(intent, notice), decision.until).action == "allow"


def test_1006_30a_bounced_notice_does_not_count() -> None:
    intent = _bureau()
    bounced = [attempt(intent, US_NOON - timedelta(days=30), channel=Channel.EMAIL,
                       template="validation_notice", outcome=DialOutcome.FAILED)]  # fmt: skip
    assert GATE.decide(intent, history(intent, bounced), US_NOON).action == "refuse"


def test_1006_30a_a_conversation_counts_as_notice() -> None:
    intent = _bureau()
    talk = [attempt(intent, US_NOON - timedelta(days=1), channel=Channel.VOICE,
                    outcome=DialOutcome.CONVERSATION)]  # fmt: skip
    assert GATE.decide(intent, history(intent, talk), US_NOON).action == "allow"


def test_cn_credit_reporting_art15_prior_notice_without_waiting() -> None:
    intent = _bureau("CN")
    notice = [attempt(intent, CN_NOON - timedelta(hours=1), channel=Channel.SMS,
                      template="credit_bureau_notice")]  # fmt: skip
    assert GATE.decide(intent, history(intent), CN_NOON).action == "refuse"
    assert GATE.decide(intent, history(intent, notice), CN_NOON).action == "allow"
