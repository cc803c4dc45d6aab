"""STOP and START in the ledger: ordered by first sight, applied with the message, by source."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from dunning.intents import Channel
from dunning.ledger import Ledger
from dunning.ledger.receipts_store import InboundRecord
from dunning.records import IntentState, Suppression
from tests.factories import T0, make_intent

PHONE = "+8613800132000"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


def _keyword(sid: str, kind: str, seconds: int) -> InboundRecord:
    return InboundRecord(
        dedupe_key=f"sms:{sid}",
        channel=Channel.SMS,
        kind=kind,
        received_at=T0 + timedelta(seconds=seconds),
        from_phone=PHONE,
        keyword="STOP" if kind == "opt_out" else "START",
        confirmation="pending" if kind == "opt_out" else None,
    )


def _live_sources(ledger: Ledger, person_id: str) -> list[str]:
    history = ledger.history(person_id, since=T0)
    return sorted(s.source for s in history.suppressions if s.channel is Channel.SMS)


def test_a_start_first_seen_before_the_latest_stop_is_stored_and_not_applied(
    ledger: Ledger,
) -> None:
    # Two webhook processes whose clocks differ: the START reached the ledger second, stamped
    # earlier than the STOP. The STOP is the later keyword and stands.
    person = "person-k1"
    stop = ledger.record_keyword(_keyword("SM1", "opt_out", 10), [person])
    start = ledger.record_keyword(_keyword("SM2", "opt_in", 5), [person])
    assert (stop.fresh, stop.applied, stop.changed) == (True, True, 1)
    assert (start.fresh, start.applied, start.changed) == (True, False, 0)
    assert _live_sources(ledger, person) == ["sms_inbound"]


def test_a_copy_changes_nothing_and_a_stop_cancels_waiting_texts_in_the_same_transaction(
    ledger: Ledger,
) -> None:
    intent = make_intent()
    ledger.record_published([intent], now=T0)
    first = ledger.record_keyword(_keyword("SM3", "opt_out", 1), [intent.person_id])
    assert first.cancelled == (intent.intent_id,)
    assert ledger.get_state(intent.intent_id) is IntentState.CANCELLED
    ledger.remove_suppressions(intent.person_id, Channel.SMS, "opt_out", now=T0)
    copy = ledger.record_keyword(_keyword("SM3", "opt_out", 2), [intent.person_id])
    assert (copy.fresh, copy.applied, copy.changed) == (False, False, 0)
    assert _live_sources(ledger, intent.person_id) == []


def test_start_lifts_stop_text_opt_outs_made_before_it_and_nothing_else(ledger: Ledger) -> None:
    person = "person-k3"
    ledger.add_suppressions(
        [
            Suppression(person, Channel.SMS, "opt_out", "account_flag", T0),
            Suppression(person, Channel.SMS, "opt_out", "provider_21610", T0),
            Suppression(person, Channel.VOICE, "opt_out", "keypad", T0),
            Suppression(person, Channel.SMS, "opt_out", "sms_inbound", T0 + timedelta(hours=1)),
        ]
    )
    start = ledger.record_keyword(_keyword("SM4", "opt_in", 60), [person])
    assert (start.applied, start.changed) == (True, 1)
    history = ledger.history(person, since=T0)
    assert sorted((s.channel, s.source) for s in history.suppressions) == [
        (Channel.SMS, "account_flag"),
        (Channel.SMS, "sms_inbound"),  # made after the START: not the START's to lift
        (Channel.VOICE, "keypad"),
    ]


def test_the_books_flag_and_a_stop_text_are_kept_as_two_suppressions(ledger: Ledger) -> None:
    person = "person-k4"
    ledger.add_suppression(Suppression(person, Channel.SMS, "opt_out", "sms_inbound", T0))
    added = ledger.add_suppressions(
        [Suppression(person, Channel.SMS, "opt_out", "account_flag", T0)]
    )
    assert added == 1
    assert _live_sources(ledger, person) == ["account_flag", "sms_inbound"]
