"""Field-visit cases run on SQLite (tests/unit) and PostgreSQL (tests/integration): the sample
visit book through the evaluator and the visit worker, team choice, outcomes and incidents,
the 7-day cap, and expiry."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect

from dunning.broker.base import OutboundMessage
from dunning.broker.topology import INTENTS_EXCHANGE
from dunning.intents import ContactIntent, encode_intent, make_intent_id
from dunning.ledger import engine as engines
from dunning.ledger.visit_store import VisitReport, VisitTask
from dunning.producers.accounts import Account
from dunning.producers.evaluator import evaluate
from dunning.producers.outcomes import NoOutcomes
from dunning.producers.sources import open_accounts
from dunning.producers.strategy import load_strategy
from dunning.records import IntentState
from dunning.visits import VisitInputError, record_outcome
from dunning.visits.sweep import EXPIRED_REASON, sweep
from tests.visit_rig import BOOK, CONFIG, VisitRig, collector

#: 21:30 in Shanghai and 08:30 in New York: both visit windows are open.
NOW = datetime(2026, 11, 28, 13, 30, tzinfo=UTC)
DAY = date(2026, 11, 28)
VALID, LAPSED = date(2027, 6, 30), date(2026, 11, 27)
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def staff(rig: VisitRig) -> None:
    """Two eligible collectors and two lapsed ones in Pudong; one of each in Brooklyn."""
    for cid, territory, credential, training in (
        ("C-1", "shanghai-pudong", VALID, VALID),
        ("C-2", "shanghai-pudong", VALID, VALID),
        ("C-3", "shanghai-pudong", LAPSED, VALID),  # credential expired yesterday
        ("C-4", "shanghai-pudong", VALID, date(2026, 11, 1)),  # training expired
        ("C-5", "brooklyn", VALID, VALID),
        ("C-6", "brooklyn", LAPSED, VALID),
    ):
        rig.ledger.add_collector(collector(cid, territory, credential=credential,
                                           training=training, at=NOW))  # fmt: skip


async def evaluated(rig: VisitRig) -> dict[str, VisitTask]:
    """The sample book evaluated and its visit intents served; tasks by account."""
    staff(rig)
    assert rig.evaluate(DAY).summary.intent_count == 3
    await rig.run_worker(expected=3)
    return {t.account_id: t for t in rig.ledger.visit_tasks()}


def report_for(task: VisitTask, **changes: Any) -> VisitReport:
    """A visit that complied with every CN rule: 10 minutes inside the window, both on site,
    identification shown, recorded from before arrival to after departure."""
    arrived = task.window_opens_at + timedelta(minutes=5)
    base = VisitReport(
        task_id=task.task_id, outcome="met_debtor", arrived_at=arrived,
        departed_at=arrived + timedelta(minutes=10), collectors=task.team, id_shown=True,
        entered=False, entry_consent=False, people=("debtor",), recording_sha256=SHA,
        recording_started_at=arrived - timedelta(seconds=30),
        recording_ended_at=arrived + timedelta(minutes=11), source="cli",
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


class VisitCases:
    """Each test gets ``rig``, a VisitRig on an empty ledger, from the module's fixture."""

    def test_the_visit_migration_comes_and_goes(self, rig: VisitRig) -> None:
        engine = rig.ledger._engine  # the migration itself is under test
        tables = {"collectors", "visit_tasks", "visit_outcomes", "compliance_incidents"}
        with engine.begin() as conn:
            command.downgrade(engines.alembic_config(conn), "0011")  # the revision before visits
        assert tables.isdisjoint(inspect(engine).get_table_names())
        engines.upgrade_head(engine)
        assert tables <= set(inspect(engine).get_table_names())
        assert engines.current_revision(engine) == engines.head_revision()

    async def test_an_eligible_account_gets_one_task_for_two_eligible_collectors(
        self, rig: VisitRig
    ) -> None:
        tasks = await evaluated(rig)
        assert set(tasks) == {"CN-300001", "CN-300002", "US-400001"}
        pudong = tasks["CN-300001"]
        assert pudong.state == "assigned"
        assert set(pudong.team) == {"C-1", "C-2"}  # never C-3 or C-4, whose papers lapsed
        assert (pudong.latitude, pudong.longitude) == ("31.2304", "121.5200")
        assert pudong.window_closes_at == datetime(2026, 11, 28, 14, 0, tzinfo=UTC)  # 22:00
        assert "张杨路500号" in pudong.address
        assert "22:00" in pudong.brief
        assert not any({"C-3", "C-4", "C-6"} & set(t.team) for t in tasks.values())
        assert rig.ledger.get_state(pudong.task_id) is IntentState.SENT
        # A send repeated after a crash between the task and the record finds the same task.
        again = await rig.adapter().send(book_intents()[pudong.task_id], attempt=2)
        assert again.provider_ref == pudong.task_id
        assert len(rig.ledger.visit_tasks()) == 3

    async def test_no_eligible_pair_waits_with_the_reason_until_one_is_added(
        self, rig: VisitRig
    ) -> None:
        tasks = await evaluated(rig)
        brooklyn = tasks["US-400001"]
        assert brooklyn.state == "waiting"
        assert brooklyn.team == ()
        assert brooklyn.reason is not None
        assert "1 eligible of 2 collectors, 2 needed" in brooklyn.reason
        assert "credential expired 1" in brooklyn.reason
        rig.ledger.add_collector(collector("C-7", "brooklyn", credential=VALID, training=VALID,
                                           at=NOW))  # fmt: skip
        result = sweep(rig.ledger, rig.packs, NOW)
        assert result.assigned == 3
        staffed = rig.ledger.visit_task(brooklyn.task_id)
        assert staffed is not None
        assert set(staffed.team) == {"C-5", "C-7"}

    async def test_cease_dispute_litigation_and_no_territory_get_no_visit_and_say_why(
        self, rig: VisitRig
    ) -> None:
        staff(rig)
        report = rig.evaluate(DAY)
        assert report.summary.blocked == {"cease": 1, "dispute": 1, "litigation": 1}
        assert report.summary.skipped["no_territory"] == 1
        await rig.run_worker(expected=3)
        accounts = {t.account_id for t in rig.ledger.visit_tasks()}
        assert accounts.isdisjoint({"CN-300003", "CN-300004", "US-400002", "CN-300005"})
        # The flags stand in the ledger too, so an intent already queued is stopped when sent.
        held = rig.ledger.history("P-CN-8005", since=NOW - timedelta(days=1)).suppressions
        assert {(s.reason, s.debt_id) for s in held} == {("litigation", "CN-300005")}

    async def test_a_second_visit_within_seven_days_is_held_by_the_cap(self, rig: VisitRig) -> None:
        tasks = await evaluated(rig)
        intent = book_intents()[tasks["CN-300001"].task_id]
        tomorrow = NOW + timedelta(hours=13)  # 10:30 the next day in Shanghai
        again = dataclasses.replace(
            intent, intent_id=make_intent_id(intent.account_id, "mid.visit.again", DAY),
            step="mid.visit.again", created_at=tomorrow, expires_at=tomorrow + timedelta(hours=12),
        )  # fmt: skip
        rig.clock.set(tomorrow)
        rig.server.publisher().publish_many(
            [OutboundMessage(INTENTS_EXCHANGE, "visit", encode_intent(again), {})]
        )
        await rig.run_worker(expected=4)
        assert rig.ledger.get_state(again.intent_id) is IntentState.EXPIRED
        overview = rig.ledger.intent_overview(again.intent_id)
        assert overview is not None
        assert "CN.visits.per_debt_per_week" in overview["last_error"]
        assert rig.ledger.visit_task(again.intent_id) is None

    async def test_an_outcome_shows_in_the_timeline_and_a_compliant_one_raises_nothing(
        self, rig: VisitRig
    ) -> None:
        task = (await evaluated(rig))["CN-300001"]
        incidents = record_outcome(rig.ledger, rig.packs, report_for(task), now=NOW)
        assert incidents == []
        events = [(e.kind, e.summary) for e in rig.ledger.timeline(task.task_id)]
        assert any("visit_outcome" in str(e) for e in events), events
        stored = rig.ledger.visit_task(task.task_id)
        assert stored is not None
        assert stored.state == "visited"
        with pytest.raises(VisitInputError, match="already has an outcome"):
            record_outcome(rig.ledger, rig.packs, report_for(task), now=NOW)

    async def test_no_recording_and_entry_without_consent_are_incidents_with_rule_ids(
        self, rig: VisitRig
    ) -> None:
        task = (await evaluated(rig))["CN-300001"]
        bad = report_for(task, recording_sha256=None, recording_started_at=None,
                         recording_ended_at=None, entered=True, entry_consent=False)  # fmt: skip
        incidents = record_outcome(rig.ledger, rig.packs, bad, now=NOW)
        assert {i.rule_id for i in incidents} == {
            "CN.visit.recording.nifa2018-21",
            "CN.visit.entry_consent.nifa2018-14",
        }
        listed = rig.ledger.incidents(
            since=NOW - timedelta(hours=1), until=NOW + timedelta(hours=1)
        )
        assert {(i.rule_id, i.intent_id) for i in listed} == {
            (i.rule_id, task.task_id) for i in incidents
        }
        timeline = rig.ledger.timeline(task.task_id)
        flagged = [e for e in timeline if "compliance_incident" in str(e.kind) + str(e.summary)]
        assert len(flagged) == 2

    async def test_each_broken_rule_is_named(self, rig: VisitRig) -> None:
        task = (await evaluated(rig))["CN-300002"]
        late = task.window_closes_at - timedelta(minutes=5)  # leaves after 22:00
        bad = report_for(
            task, arrived_at=late, departed_at=late + timedelta(minutes=20),
            recording_started_at=late + timedelta(minutes=3),  # started after the arrival
            recording_ended_at=late + timedelta(minutes=21), collectors=task.team[:1],
            people=("debtor", "third_party"), id_shown=False,
        )  # fmt: skip
        after = late + timedelta(hours=1)
        rules = {i.rule_id for i in record_outcome(rig.ledger, rig.packs, bad, now=after)}
        assert rules == {
            "CN.visit.window.nifa2018", "CN.visit.team.nifa2018-13",
            "CN.visit.identification.nifa2018-14", "CN.visit.third_party.nifa2018-15",
            "CN.visit.recording.nifa2018-21",
        }  # fmt: skip

    async def test_a_repeated_event_is_stored_once(self, rig: VisitRig) -> None:
        task = (await evaluated(rig))["CN-300001"]
        bad = report_for(task, event_id="fsm-1", source="webhook", recording_sha256=None)
        first = record_outcome(rig.ledger, rig.packs, bad, now=NOW)
        again = record_outcome(rig.ledger, rig.packs, bad, now=NOW + timedelta(minutes=1))
        assert [i.rule_id for i in again] == [i.rule_id for i in first]
        window = (NOW - timedelta(hours=1), NOW + timedelta(hours=1))
        assert len(rig.ledger.incidents(since=window[0], until=window[1])) == len(first)
        assert len(rig.ledger.visit_outcomes(task.task_id)) == 1

    async def test_a_bad_report_names_its_fields_and_stores_nothing(self, rig: VisitRig) -> None:
        task = (await evaluated(rig))["CN-300001"]
        bad = report_for(
            task, outcome="promise_to_pay", departed_at=task.window_opens_at,
            recording_sha256="abc", collectors=("C-1", "C-99"), people=("neighbour",),
        )  # fmt: skip
        with pytest.raises(VisitInputError) as caught:
            record_outcome(rig.ledger, rig.packs, bad, now=NOW)
        for field in ("departed_at", "recording_sha256", "promise_date", "promise_amount",
                      "C-99", "neighbour"):  # fmt: skip
            assert field in str(caught.value)
        assert rig.ledger.visit_outcomes(task.task_id) == []

    async def test_paid_and_a_promise_suppress_the_debt(self, rig: VisitRig) -> None:
        tasks = await evaluated(rig)
        paid, promised = tasks["CN-300001"], tasks["CN-300002"]
        record_outcome(rig.ledger, rig.packs, report_for(paid, outcome="paid"), now=NOW)
        promise = report_for(promised, outcome="promise_to_pay", promise_date=date(2026, 12, 5),
                             promise_amount="5000.00")  # fmt: skip
        record_outcome(rig.ledger, rig.packs, promise, now=NOW)
        later = NOW + timedelta(days=1)
        paid_history = rig.ledger.history(paid.person_id, since=NOW - timedelta(days=1))
        assert {(s.reason, s.debt_id) for s in paid_history.suppressions} >= {
            ("paid", paid.debt_id)
        }
        promised_history = rig.ledger.history(promised.person_id, since=NOW - timedelta(days=1))
        (held,) = [s for s in promised_history.suppressions if s.reason == "promise_to_pay"]
        assert held.in_force(later)
        assert not held.in_force(datetime(2026, 12, 5, 16, 0, tzinfo=UTC))  # 00:00 on the 6th

    async def test_a_task_whose_window_closed_expires_with_the_reason(self, rig: VisitRig) -> None:
        tasks = await evaluated(rig)
        pudong = tasks["CN-300001"]
        result = sweep(rig.ledger, rig.packs, pudong.window_closes_at - timedelta(seconds=1))
        assert result.expired == 0
        result = sweep(rig.ledger, rig.packs, pudong.window_closes_at)
        assert result.expired == 2  # both Shanghai tasks; Brooklyn's window is still open
        expired = rig.ledger.visit_task(pudong.task_id)
        assert expired is not None
        assert (expired.state, expired.reason) == ("expired", EXPIRED_REASON)
        # No one was visited: the 7-day visit cap does not count the task.
        history = rig.ledger.history(pudong.person_id, since=NOW - timedelta(days=1))
        assert history.attempts == ()
        assert any("visit_expired" in str(e.kind) + str(e.summary)
                   for e in rig.ledger.timeline(pudong.task_id))  # fmt: skip
        # Never visited late: a report of a visit after the close is an incident.
        closed = pudong.window_closes_at
        late = report_for(
            pudong, arrived_at=closed + timedelta(minutes=1),
            departed_at=closed + timedelta(minutes=9), recording_started_at=closed,
            recording_ended_at=closed + timedelta(minutes=10),
        )  # fmt: skip
        rules = {
            i.rule_id
            for i in record_outcome(rig.ledger, rig.packs, late, now=NOW + timedelta(hours=1))
        }
        assert rules == {"CN.visit.window.nifa2018"}


def book_intents() -> dict[str, ContactIntent]:
    """The sample book's intents on DAY, by id, as the evaluator makes them (nothing stored)."""
    accounts = [a for a in open_accounts(BOOK) if isinstance(a, Account)]
    strategy = load_strategy(CONFIG / "strategy.toml")
    evaluations = evaluate(accounts, strategy, as_of=DAY, now=NOW, outcomes=NoOutcomes())
    return {i.intent_id: i for e in evaluations for i in e.intents}
