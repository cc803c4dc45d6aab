"""Ledger behaviour, written once and run on SQLite (unit) and PostgreSQL (integration).

A test module subclasses :class:`LedgerCases` and provides a ``ledger`` fixture (a migrated,
empty ledger) and a ``ledger_url`` fixture (its URL, for a second connection).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from dunning.intents import Channel, ContactIntent
from dunning.ledger import Ledger
from dunning.ledger import engine as engines
from dunning.records import ContactHistory, GateAction, GateDecision, IntentState, Suppression
from tests.factories import T0, make_intent

WINDOW_S = 60.0


def _person_intents(count: int, channel: Channel = Channel.SMS) -> list[ContactIntent]:
    """``count`` intents of one person (different accounts' steps, same person and debt)."""
    first = make_intent(channel)
    rest = [
        make_intent(channel, person_id=first.person_id, debt_id=first.debt_id)
        for _ in range(count - 1)
    ]
    return [first, *rest]


def _at_most(limit: int) -> Callable[[ContactHistory], GateDecision]:
    def gate(history: ContactHistory) -> GateDecision:
        if len(history.attempts) >= limit:
            return GateDecision(
                "defer",
                "cap.test",
                f"{limit} attempts already",
                "test-1",
                inputs={"attempts": str(len(history.attempts))},
            )
        return GateDecision.allow("test-1", attempts=str(len(history.attempts)))

    return gate


def _events(ledger: Ledger, intent_id: str) -> list[str]:
    return [e.kind for e in ledger.timeline(intent_id)]


def _outcomes(ledger: Ledger, intent_id: str) -> list[str]:
    """The outcome of each attempt of ``intent_id``, in attempt order."""
    found = [e.detail for e in ledger.timeline(intent_id) if e.kind == "attempt"]
    return [str(d["outcome"]) for d in sorted(found, key=lambda d: int(d["attempt"]))]


def _contact_log(url: str, person_id: str) -> int:
    """Rows of the contact_log view for a person, read over a separate connection."""
    engine = engines.make_engine(url)
    try:
        with engine.connect() as conn:
            count = conn.scalar(
                text("SELECT count(*) FROM contact_log WHERE person_id = :p"), {"p": person_id}
            )
    finally:
        engine.dispose()
    return int(count or 0)


class LedgerCases:
    def test_migrated_to_head(self, ledger: Ledger, ledger_url: str) -> None:
        engine = engines.make_engine(ledger_url)
        try:
            assert engines.current_revision(engine) == engines.head_revision()
            engines.upgrade_head(engine)  # a second upgrade is a no-op
            assert engines.current_revision(engine) == engines.head_revision()
        finally:
            engine.dispose()

    def test_lifecycle_queued_sending_sent(self, ledger: Ledger) -> None:
        intent = make_intent()
        assert ledger.get_state(intent.intent_id) is None
        assert ledger.record_published([intent], now=T0) == {intent.intent_id}
        assert ledger.get_state(intent.intent_id) is IntentState.QUEUED

        claim = ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        assert (claim.kind, claim.state, claim.attempt) == ("claimed", IntentState.SENDING, 1)
        assert claim.sending_since == T0
        assert ledger.get_state(intent.intent_id) is IntentState.SENDING

        ledger.record_sent(
            intent.intent_id,
            1,
            provider_ref="SM1",
            status="queued",
            detail={"segments": 2},
            now=T0 + timedelta(seconds=1),
        )
        assert ledger.get_state(intent.intent_id) is IntentState.SENT
        attempt = next(e for e in ledger.timeline(intent.intent_id) if e.kind == "attempt")
        assert attempt.detail["provider_ref"] == "SM1"
        assert attempt.detail["segments"] == 2
        assert ledger.counts_by_state() == {("sms", "sent"): 1}

    def test_record_published_leaves_existing_ids_untouched(self, ledger: Ledger) -> None:
        first, second = make_intent(), make_intent(Channel.EMAIL)
        ledger.record_published([first], now=T0)
        ledger.claim(first, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        assert ledger.record_published([first, second], now=T0) == {second.intent_id}
        assert ledger.get_state(first.intent_id) is IntentState.SENDING

    def test_redelivery_after_sent_is_done_without_an_attempt(self, ledger: Ledger) -> None:
        intent = make_intent()
        ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        ledger.record_sent(
            intent.intent_id, 1, provider_ref="SM1", status="queued", detail={}, now=T0
        )
        again = ledger.claim(
            intent, worker="w2", now=T0 + timedelta(hours=1), reconcile_after_s=WINDOW_S
        )
        assert (again.kind, again.state, again.attempt) == ("done", IntentState.SENT, 1)
        history = ledger.history(intent.person_id, since=T0 - timedelta(days=1))
        assert len(history.attempts) == 1

    def test_claim_inserts_an_intent_the_evaluator_never_recorded(self, ledger: Ledger) -> None:
        intent = make_intent(Channel.VOICE)
        claim = ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        assert claim.kind == "claimed"
        # It came through the broker, so the sweeper must not republish it.
        ledger.release(intent.intent_id, 1, reason="throttled", now=T0)
        assert ledger.unpublished(older_than=T0 + timedelta(hours=1)) == []

    def test_in_doubt_within_the_reconcile_window(self, ledger: Ledger) -> None:
        intent = make_intent()
        ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        again = ledger.claim(
            intent,
            worker="w2",
            now=T0 + timedelta(seconds=WINDOW_S - 1),
            reconcile_after_s=WINDOW_S,
        )
        assert (again.kind, again.state, again.attempt) == ("in_doubt", IntentState.SENDING, 1)
        assert again.sending_since == T0

    def test_reclaimed_after_the_window_without_a_receipt(
        self, ledger: Ledger, ledger_url: str
    ) -> None:
        intent = make_intent()
        ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        later = T0 + timedelta(seconds=WINDOW_S + 1)
        assert ledger.stuck_sending(older_than=later - timedelta(seconds=WINDOW_S)) == [
            intent.intent_id
        ]
        again = ledger.claim(intent, worker="w2", now=later, reconcile_after_s=WINDOW_S)
        assert (again.kind, again.attempt, again.sending_since) == ("claimed", 2, later)
        assert "reclaimed" in _events(ledger, intent.intent_id)
        # The first attempt is closed as replaced: one intent is one contact for the caps.
        assert _outcomes(ledger, intent.intent_id) == ["reclaimed", "sending"]
        history = ledger.history(intent.person_id, since=T0 - timedelta(days=1))
        assert [a.at for a in history.attempts] == [later]
        assert _contact_log(ledger_url, intent.person_id) == 1

    def test_a_reclaim_is_not_held_back_by_its_own_first_attempt(self, ledger: Ledger) -> None:
        intent = make_intent()
        ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S, gate=_at_most(1))
        later = T0 + timedelta(seconds=WINDOW_S + 1)
        again = ledger.claim(
            intent, worker="w2", now=later, reconcile_after_s=WINDOW_S, gate=_at_most(1)
        )
        assert (again.kind, again.attempt) == ("claimed", 2)
        # A second intent of the same person finds one contact, and the cap of one holds.
        other = make_intent(person_id=intent.person_id, debt_id=intent.debt_id)
        held = ledger.claim(
            other, worker="w2", now=later, reconcile_after_s=WINDOW_S, gate=_at_most(1)
        )
        assert held.kind == "gated"

    @pytest.mark.parametrize("how", ["released", "not_sent"])
    def test_a_reclaim_that_never_reaches_the_provider_gives_the_count_back(
        self, ledger: Ledger, ledger_url: str, how: str
    ) -> None:
        intent = make_intent()
        ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        later = T0 + timedelta(seconds=WINDOW_S + 1)
        ledger.claim(intent, worker="w2", now=later, reconcile_after_s=WINDOW_S)
        if how == "released":
            ledger.release(intent.intent_id, 2, reason="rate limited", now=later)
        else:
            ledger.record_failure(
                intent.intent_id, 2, error_class="ConfigError", reason="no template",
                provider_code=None, next_state=IntentState.DEAD, now=later,
                reached_provider=False,
            )  # fmt: skip
        # The first attempt may have reached the person: it counts again, closed.
        assert _outcomes(ledger, intent.intent_id) == ["in_doubt", how]
        history = ledger.history(intent.person_id, since=T0 - timedelta(days=1))
        assert [a.at for a in history.attempts] == [T0]
        assert _contact_log(ledger_url, intent.person_id) == 1

    def test_a_receipt_closes_the_attempt_a_crash_left_sending(self, ledger: Ledger) -> None:
        intent = make_intent()
        ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        ledger.record_receipt(
            "SM7", "delivered", channel=Channel.SMS, rank=5, now=T0 + timedelta(seconds=3),
            intent_id=intent.intent_id,
        )  # fmt: skip
        assert _outcomes(ledger, intent.intent_id) == ["sent"]
        attempt = next(e for e in ledger.timeline(intent.intent_id) if e.kind == "attempt")
        assert attempt.detail["provider_ref"] == "SM7"

    def test_settled_from_a_receipt_after_the_window(self, ledger: Ledger) -> None:
        intent = make_intent()
        ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        # The worker died after the provider accepted; the callback carries the intent id.
        applied = ledger.record_receipt(
            "SM9",
            "delivered",
            channel=Channel.SMS,
            rank=5,
            now=T0 + timedelta(seconds=5),
            intent_id=intent.intent_id,
        )
        assert applied
        again = ledger.claim(
            intent,
            worker="w2",
            now=T0 + timedelta(seconds=WINDOW_S + 1),
            reconcile_after_s=WINDOW_S,
        )
        assert (again.kind, again.state, again.attempt) == ("done", IntentState.DELIVERED, 1)

    def test_settled_from_a_receipt_that_came_while_sending(self, ledger: Ledger) -> None:
        intent = make_intent()
        ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        # A receipt for an intent in sending ends the doubt at once.
        ledger.record_receipt(
            "SM9", "sent", channel=Channel.SMS, rank=3, now=T0, intent_id=intent.intent_id
        )
        again = ledger.claim(intent, worker="w2", now=T0, reconcile_after_s=WINDOW_S)
        assert (again.kind, again.state) == ("done", IntentState.SENT)

    @pytest.mark.parametrize(
        ("action", "state"),
        [
            ("defer", IntentState.DEFERRED),
            ("suppress", IntentState.SUPPRESSED),
            ("refuse", IntentState.DEAD),
        ],
    )
    def test_gate_verdicts_are_recorded_in_audit(
        self, ledger: Ledger, action: GateAction, state: IntentState
    ) -> None:
        intent = make_intent()
        decision = GateDecision(
            action,
            "cn.quiet_hours",
            "22:30 local is outside 08:00-22:00",
            "cn-2026.1",
            until=T0 + timedelta(hours=9),
            inputs={"local_time": "22:30"},
        )
        seen: list[ContactHistory] = []

        def gate(history: ContactHistory) -> GateDecision:
            seen.append(history)
            return decision

        claim = ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S, gate=gate)
        assert (claim.kind, claim.state, claim.attempt, claim.decision) == (
            "gated",
            state,
            0,
            decision,
        )
        assert seen[0].person_id == intent.person_id
        assert ledger.get_state(intent.intent_id) is state
        record = next(e for e in ledger.timeline(intent.intent_id) if e.kind == action)
        assert record.detail["rule_id"] == "cn.quiet_hours"
        assert record.detail["pack_version"] == "cn-2026.1"
        assert record.detail["inputs"] == {"local_time": "22:30"}
        assert ledger.history(intent.person_id, since=T0 - timedelta(days=1)).attempts == ()
        later = ledger.claim(
            intent,
            worker="w1",
            now=T0 + timedelta(hours=9),
            reconcile_after_s=WINDOW_S,
            gate=lambda _: GateDecision.allow(),
        )
        assert later.kind == ("claimed" if action == "defer" else "done")

    def test_release_does_not_count_as_an_attempt(self, ledger: Ledger, ledger_url: str) -> None:
        intent = make_intent()
        ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        ledger.release(intent.intent_id, 1, reason="rate limited", now=T0)
        assert ledger.get_state(intent.intent_id) is IntentState.QUEUED
        assert ledger.history(intent.person_id, since=T0 - timedelta(days=1)).attempts == ()
        assert _contact_log(ledger_url, intent.person_id) == 0
        again = ledger.claim(
            intent, worker="w1", now=T0 + timedelta(seconds=1), reconcile_after_s=WINDOW_S
        )
        assert (again.kind, again.attempt) == ("claimed", 1)
        assert _contact_log(ledger_url, intent.person_id) == 1
        assert "released" in _events(ledger, intent.intent_id)

    def test_failure_then_retry_then_dead(self, ledger: Ledger) -> None:
        intent = make_intent()
        ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        ledger.record_failure(
            intent.intent_id,
            1,
            error_class="TransientChannelError",
            reason="HTTP 503",
            provider_code=None,
            next_state=IntentState.QUEUED,
            now=T0,
        )
        assert ledger.get_state(intent.intent_id) is IntentState.QUEUED
        second = ledger.claim(
            intent, worker="w1", now=T0 + timedelta(seconds=10), reconcile_after_s=WINDOW_S
        )
        assert second.attempt == 2
        ledger.record_failure(
            intent.intent_id,
            2,
            error_class="PermanentChannelError",
            reason="invalid number",
            provider_code="21211",
            next_state=IntentState.DEAD,
            now=T0 + timedelta(seconds=11),
        )
        assert (
            ledger.claim(
                intent, worker="w1", now=T0 + timedelta(seconds=20), reconcile_after_s=WINDOW_S
            ).kind
            == "done"
        )
        codes = [e.detail.get("provider_code") for e in ledger.timeline(intent.intent_id)]
        assert "21211" in codes

    def test_a_failure_before_the_provider_is_not_a_contact(
        self, ledger: Ledger, ledger_url: str
    ) -> None:
        first, second = _person_intents(2)
        ledger.claim(first, worker="w1", now=T0, reconcile_after_s=WINDOW_S, gate=_at_most(1))
        # The template did not render: nothing was written to the provider.
        ledger.record_failure(
            first.intent_id, 1, error_class="ConfigError", reason="template missing",
            provider_code=None, next_state=IntentState.DEAD, now=T0, reached_provider=False,
        )  # fmt: skip
        assert ledger.history(first.person_id, since=T0 - timedelta(days=1)).attempts == ()
        assert _contact_log(ledger_url, first.person_id) == 0
        attempt = next(e for e in ledger.timeline(first.intent_id) if e.kind == "attempt")
        assert (attempt.detail["outcome"], attempt.detail["error_class"]) == (
            "not_sent",
            "ConfigError",
        )
        later = T0 + timedelta(minutes=1)
        claim = ledger.claim(
            second, worker="w1", now=later, reconcile_after_s=WINDOW_S, gate=_at_most(1)
        )
        assert claim.kind == "claimed"
        # A refused connection on a retry is left out too; the attempt number still advances.
        ledger.record_failure(
            second.intent_id, 1, error_class="TransientChannelError", reason="refused",
            provider_code="transport", next_state=IntentState.QUEUED, now=later,
            reached_provider=False,
        )  # fmt: skip
        retry = ledger.claim(
            second, worker="w1", now=later, reconcile_after_s=WINDOW_S, gate=_at_most(1)
        )
        assert (retry.kind, retry.attempt) == ("claimed", 2)

    def test_a_failure_at_the_provider_and_a_send_in_doubt_still_count(
        self, ledger: Ledger, ledger_url: str
    ) -> None:
        refused, in_doubt, third = _person_intents(3)
        ledger.claim(refused, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        ledger.record_failure(
            refused.intent_id, 1, error_class="TransientChannelError", reason="HTTP 503",
            provider_code="503", next_state=IntentState.DEAD, now=T0,
        )  # fmt: skip
        # A timeout after the request was written: the claim stays in sending, in doubt.
        ledger.claim(in_doubt, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        history = ledger.history(refused.person_id, since=T0 - timedelta(days=1))
        assert [a.intent_id for a in history.attempts] == [refused.intent_id, in_doubt.intent_id]
        assert _contact_log(ledger_url, refused.person_id) == 2
        gated = ledger.claim(
            third, worker="w1", now=T0, reconcile_after_s=WINDOW_S, gate=_at_most(2)
        )
        assert gated.kind == "gated"

    def test_gate_sees_earlier_attempts_of_the_person(self, ledger: Ledger) -> None:
        batch = _person_intents(4)
        kinds = [
            ledger.claim(
                i,
                worker="w1",
                now=T0 + timedelta(minutes=n),
                reconcile_after_s=WINDOW_S,
                gate=_at_most(3),
            ).kind
            for n, i in enumerate(batch)
        ]
        assert kinds == ["claimed", "claimed", "claimed", "gated"]
        history = ledger.history(batch[0].person_id, since=T0 - timedelta(days=1))
        assert [a.intent_id for a in history.attempts] == [i.intent_id for i in batch[:3]]
        assert history.attempts[0].phone == batch[0].recipient.phone
        assert history.attempts[0].template == batch[0].template.name
        # Older than the window asked for: not in the history.
        assert ledger.history(batch[0].person_id, since=T0 + timedelta(hours=1)).attempts == ()

    def test_times_come_back_aware_in_utc(self, ledger: Ledger) -> None:
        intent = make_intent()
        shanghai = T0.astimezone(ZoneInfo("Asia/Shanghai"))
        claim = ledger.claim(intent, worker="w1", now=shanghai, reconcile_after_s=WINDOW_S)
        assert claim.sending_since == T0
        (attempt,) = ledger.history(intent.person_id, since=T0 - timedelta(days=1)).attempts
        assert attempt.at == T0
        assert attempt.at.utcoffset() == timedelta(0)

    def test_suppressions_are_idempotent_and_removable(self, ledger: Ledger) -> None:
        person = "person-s1"
        opt_out = Suppression(person, Channel.SMS, "opt_out", "sms_inbound", T0)
        dispute = Suppression(person, None, "dispute", "operator", T0, debt_id="debt-1")
        ledger.add_suppression(opt_out)
        ledger.add_suppression(opt_out)
        ledger.add_suppression(dispute)
        history = ledger.history(person, since=T0)
        assert sorted(s.reason for s in history.suppressions) == ["dispute", "opt_out"]
        assert history.suppressions[0].created_at == T0

        assert ledger.remove_suppressions(person, Channel.EMAIL, "opt_out", now=T0) == 0
        assert ledger.remove_suppressions(person, Channel.SMS, "opt_out", now=T0) == 1
        assert ledger.remove_suppressions(person, None, "dispute", now=T0) == 1
        assert ledger.history(person, since=T0).suppressions == ()
        ledger.add_suppression(opt_out)  # after removal it can be added again
        assert len(ledger.history(person, since=T0).suppressions) == 1

    def test_suppression_bounds_round_trip(self, ledger: Ledger) -> None:
        person = "person-bounds"
        promise = Suppression(
            person, None, "promise_to_pay", "account_flag", T0, "debt-1",
            until=T0 + timedelta(days=2),
        )  # fmt: skip
        barred = Suppression(
            person, None, "time_barred", "account_flag", T0, "debt-1",
            starts_at=T0 + timedelta(days=1),
        )  # fmt: skip
        ledger.add_suppressions([promise, barred])
        stored = {s.reason: s for s in ledger.history(person, since=T0).suppressions}
        assert stored["promise_to_pay"].until == T0 + timedelta(days=2)
        assert stored["promise_to_pay"].starts_at is None
        assert stored["time_barred"].starts_at == T0 + timedelta(days=1)
        assert stored["time_barred"].until is None

    def test_book_owned_flag_suppressions_follow_the_book(self, ledger: Ledger) -> None:
        person, debt, other = "person-book", "debt-b1", "debt-b2"
        hardship = Suppression(person, None, "hardship", "account_flag", T0, debt)
        cease = Suppression(person, None, "cease", "account_flag", T0)
        promise = Suppression(
            person, None, "promise_to_pay", "account_flag", T0, debt, until=T0 + timedelta(days=3)
        )
        elsewhere = Suppression(person, None, "hardship", "account_flag", T0, other)
        assert ledger.record_account_flags(
            [hardship, cease, promise, elsewhere], [(person, debt), (person, other)], now=T0
        ) == (4, 0)
        # The same flags again: nothing new, nothing lifted.
        assert ledger.record_account_flags(
            [hardship, cease, promise, elsewhere], [(person, debt), (person, other)], now=T0
        ) == (0, 0)
        later = T0 + timedelta(days=1)
        moved = Suppression(
            person, None, "promise_to_pay", "account_flag", later, debt,
            until=T0 + timedelta(days=5),
        )  # fmt: skip
        # Debt b1 evaluated again: hardship and cease cleared, the promise moved; b2 not read.
        assert ledger.record_account_flags([moved], [(person, debt)], now=later) == (1, 2)
        live = ledger.history(person, since=T0).suppressions
        assert sorted((s.reason, s.debt_id, s.until) for s in live) == [
            ("cease", None, None),  # a lasting request: only an operator lifts it
            ("hardship", other, None),
            ("promise_to_pay", debt, T0 + timedelta(days=5)),
        ]

    def test_history_holds_every_debt_of_the_person(self, ledger: Ledger) -> None:
        first = make_intent(Channel.VOICE, person_id="person-debts", debt_id="debt-d1")
        second = make_intent(Channel.VOICE, person_id="person-debts", debt_id="debt-d2")
        for n, intent in enumerate((first, second)):
            claim = ledger.claim(
                intent, worker="w1", now=T0 + timedelta(minutes=n), reconcile_after_s=WINDOW_S
            )
            assert claim.kind == "claimed"
        seen: list[ContactHistory] = []

        def gate(history: ContactHistory) -> GateDecision:
            seen.append(history)
            return GateDecision("defer", "cap.test", "looked", "test-1")

        third = make_intent(Channel.VOICE, person_id="person-debts", debt_id="debt-d3")
        ledger.claim(
            third, worker="w1", now=T0 + timedelta(minutes=5), reconcile_after_s=1, gate=gate
        )
        [history] = seen
        assert sorted(a.debt_id for a in history.attempts) == ["debt-d1", "debt-d2"]

    def test_receipts_only_move_forward_and_early_ones_wait(self, ledger: Ledger) -> None:
        intent = make_intent()
        ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        # The callback beat the HTTP response and carries no intent id: kept unmatched.
        assert not ledger.record_receipt("SM7", "delivered", channel=Channel.SMS, rank=5, now=T0)
        ledger.record_sent(
            intent.intent_id, 1, provider_ref="SM7", status="queued", detail={}, now=T0
        )
        assert ledger.get_state(intent.intent_id) is IntentState.DELIVERED
        late = ledger.record_receipt("SM7", "sent", channel=Channel.SMS, rank=3, now=T0)
        assert not late
        assert ledger.get_state(intent.intent_id) is IntentState.DELIVERED

    def test_set_state_on_a_missing_intent_changes_nothing(self, ledger: Ledger) -> None:
        assert ledger.set_state("0" * 32, IntentState.EXPIRED, reason="stale", now=T0) is False
        assert ledger.get_state("0" * 32) is None
        intent = make_intent()
        ledger.record_published([intent], now=T0)
        assert ledger.set_state(intent.intent_id, IntentState.EXPIRED, reason="stale", now=T0)
        assert ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S).kind == "done"

    def test_set_state_never_rewrites_a_sent_or_sending_intent(self, ledger: Ledger) -> None:
        sent, sending = make_intent(), make_intent()
        ledger.record_published([sent, sending], now=T0)
        for intent in (sent, sending):
            ledger.claim(intent, worker="w1", now=T0, reconcile_after_s=WINDOW_S)
        ledger.record_sent(
            sent.intent_id, 1, provider_ref="SM1", status="queued", detail={}, now=T0
        )
        # A late copy of each message finds it expired: the ledger keeps what happened.
        for intent in (sent, sending):
            assert not ledger.set_state(
                intent.intent_id, IntentState.EXPIRED, reason="stale copy", now=T0
            )
        assert ledger.get_state(sent.intent_id) is IntentState.SENT
        assert ledger.get_state(sending.intent_id) is IntentState.SENDING

    def test_unpublished_until_marked(self, ledger: Ledger) -> None:
        kept, confirmed = make_intent(), make_intent(Channel.LETTER)
        ledger.record_published([kept, confirmed], now=T0)
        ledger.mark_published([confirmed.intent_id], now=T0)
        assert ledger.unpublished(older_than=T0) == []  # too young to be called lost
        found = ledger.unpublished(older_than=T0 + timedelta(minutes=5))
        assert found == [kept]
        assert ledger.unpublished(older_than=kept.expires_at) == []  # stale: never resent

    def test_audit_without_an_intent(self, ledger: Ledger) -> None:
        intent = make_intent()
        ledger.audit(None, "dlq_purge", now=T0, detail={"count": 3})
        ledger.audit(intent.intent_id, "operator_note", now=T0, rule_id="r1", detail={"by": "ops"})
        (event,) = ledger.timeline(intent.intent_id)
        assert (event.kind, event.detail["rule_id"], event.detail["by"]) == (
            "operator_note",
            "r1",
            "ops",
        )

    def test_racing_claims_for_one_person_pass_the_cap_once(
        self, ledger: Ledger, ledger_url: str
    ) -> None:
        workers = 8
        batch = _person_intents(workers)
        ledgers = [Ledger.open(ledger_url, migrate=False) for _ in range(workers)]
        start = threading.Barrier(workers)
        kinds: list[str] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def run(index: int) -> None:
            try:
                start.wait(timeout=10)
                claim = ledgers[index].claim(
                    batch[index],
                    worker=f"w{index}",
                    now=T0,
                    reconcile_after_s=WINDOW_S,
                    gate=_at_most(3),
                )
                with lock:
                    kinds.append(claim.kind)
            except Exception as exc:  # noqa: BLE001  surfaced below: a thread cannot fail the test
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        for extra in ledgers:
            extra.close()
        assert not errors, errors[:1]
        assert sorted(kinds) == ["claimed"] * 3 + ["gated"] * (workers - 3)
        check = Ledger.open(ledger_url, migrate=False)
        try:
            assert len(check.history(batch[0].person_id, since=T0).attempts) == 3
        finally:
            check.close()
