"""The visit rules as pure policies: the check of a reported visit, the pack section, the team
choice, the gate for packs without visit rules, and the field-service JSON."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from dunning.compliance import ComplianceGate, load_packs
from dunning.compliance.visit_rules import VisitFacts, check_visit
from dunning.errors import ConfigError, DecodeError
from dunning.intents import Channel, decode_intent, encode_intent
from dunning.records import ContactAttempt, ContactHistory, DialOutcome, Suppression
from dunning.visits import VisitInputError
from dunning.visits.report_json import parse_report
from dunning.visits.teams import choose_team
from tests.factories import make_intent
from tests.visit_rig import CONFIG, collector

PACKS = load_packs(CONFIG / "compliance.toml")
AT = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
CN = PACKS.select("CN", AT)
US = PACKS.select("US", AT)
assert CN is not None and CN.visit is not None  # noqa: PT018  module set-up, not a test
assert US is not None and US.visit is not None  # noqa: PT018


def facts(**changes: object) -> VisitFacts:
    base = VisitFacts(
        arrived_at=AT, departed_at=AT + timedelta(minutes=20), timezone="Asia/Shanghai",
        collectors=2, id_shown=True, entered=True, entry_consent=True,
        third_party_contacted=False, recording_sha256="a" * 64,
        recording_started_at=AT, recording_ended_at=AT + timedelta(minutes=20),
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


def rules_broken(pack_rules: object, f: VisitFacts) -> set[str]:
    return {v.rule_id for v in check_visit(pack_rules, f)}  # type: ignore[arg-type]


def test_a_compliant_visit_breaks_nothing_in_either_pack() -> None:
    assert rules_broken(CN.visit, facts()) == set()
    us = facts(timezone="America/New_York", arrived_at=AT + timedelta(hours=12),
               departed_at=AT + timedelta(hours=12, minutes=20),
               recording_started_at=AT + timedelta(hours=12),
               recording_ended_at=AT + timedelta(hours=12, minutes=20))  # fmt: skip
    assert rules_broken(US.visit, us) == set()


@pytest.mark.parametrize(
    ("changes", "rule"),
    [
        ({"arrived_at": AT - timedelta(hours=2, minutes=30)}, "CN.visit.window.nifa2018"),  # 07:30
        ({"collectors": 1}, "CN.visit.team.nifa2018-13"),
        ({"id_shown": False}, "CN.visit.identification.nifa2018-14"),
        ({"entry_consent": False}, "CN.visit.entry_consent.nifa2018-14"),
        ({"third_party_contacted": True}, "CN.visit.third_party.nifa2018-15"),
        ({"recording_sha256": None}, "CN.visit.recording.nifa2018-21"),
        ({"recording_started_at": AT + timedelta(seconds=61)}, "CN.visit.recording.nifa2018-21"),
        ({"recording_ended_at": AT + timedelta(minutes=18)}, "CN.visit.recording.nifa2018-21"),
    ],
)
def test_each_cn_rule_names_itself(changes: dict[str, object], rule: str) -> None:
    f = facts(**changes)
    if "arrived_at" in changes:
        f = dataclasses.replace(f, recording_started_at=f.arrived_at)
    assert rules_broken(CN.visit, f) == {rule}


def test_a_recording_that_starts_within_the_grace_still_covers_the_visit() -> None:
    assert rules_broken(CN.visit, facts(recording_started_at=AT + timedelta(seconds=60))) == set()


def test_us_workplace_and_door_notice_rules() -> None:
    evening = AT + timedelta(hours=12)  # 09:00 in New York
    base = facts(timezone="America/New_York", arrived_at=evening,
                 departed_at=evening + timedelta(minutes=5), recording_started_at=evening,
                 recording_ended_at=evening + timedelta(minutes=5))  # fmt: skip
    assert rules_broken(US.visit, dataclasses.replace(base, at_workplace=True)) == set()
    both = dataclasses.replace(base, at_workplace=True, employer_prohibits=True,
                               notice_mentions_debt=True)  # fmt: skip
    assert rules_broken(US.visit, both) == {
        "US.visit.workplace.1692c-a3", "US.visit.debt_notice.1692f8"
    }  # fmt: skip


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ('start = "08:00"\nend = "22:00"\nmin_collectors = 1\nrules = []', "at least 2"),
        ('start = "22:00"\nend = "08:00"\nmin_collectors = 2\nrules = []', "later than start"),
        ('start = "08:00"\nend = "22:00"\nmin_collectors = 2\n'
         '[[pack.visit.rules]]\nid = "X"\ncheck = "vibes"\nsource = "s"', "'vibes' is not one of"),
    ],
)  # fmt: skip
def test_a_bad_visit_section_names_the_key(tmp_path: Path, section: str, message: str) -> None:
    text = (
        'schema = "dunning.compliance/1"\n[[pack]]\njurisdiction = "XX"\nversion = "XX-1"\n'
        'effective_from = 2026-01-01\n[pack.window]\nrule_id = "w"\nstart = "08:00"\n'
        f'end = "21:00"\nsource = "s"\n[pack.visit]\n{section}\n'
    )
    path = tmp_path / "compliance.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as caught:
        load_packs(path)
    assert "pack[0].visit" in str(caught.value)


def test_the_least_loaded_eligible_collectors_make_the_team() -> None:
    day = date(2026, 11, 28)
    people = [
        collector("A", "t", credential=date(2027, 1, 1), training=date(2027, 1, 1), at=AT),
        collector("B", "t", credential=date(2027, 1, 1), training=date(2027, 1, 1), at=AT),
        collector("C", "t", credential=date(2027, 1, 1), training=date(2027, 1, 1), at=AT),
        collector("D", "t", credential=day, training=date(2027, 1, 1), at=AT),  # last valid day
        collector("E", "t", credential=date(2026, 11, 27), training=date(2027, 1, 1), at=AT),
    ]
    team, reason = choose_team(people, territory="t", day=day, size=2,
                               loads=Counter({"A": 2, "B": 1}))  # fmt: skip
    assert (team, reason) == (("C", "D"), None)
    team, reason = choose_team(people[3:], territory="t", day=day, size=2, loads=Counter())
    assert team == ()
    assert reason is not None
    assert "1 eligible of 2 collectors" in reason
    assert choose_team(people, territory="", day=day, size=2, loads=Counter())[1] == (
        "no territory on the account: no team can be chosen"
    )


def test_the_gate_refuses_a_visit_where_the_pack_has_no_visit_rules() -> None:
    gate = ComplianceGate(PACKS, jitter_s=0)
    uk = make_intent(Channel.VISIT, jurisdiction="UK", timezone="Europe/London")
    decision = gate.decide(uk, ContactHistory(uk.person_id), AT + timedelta(hours=8))
    assert (decision.action, decision.rule_id) == ("refuse", "UK.visit.no_rules")
    stopped = ContactHistory(
        uk.person_id, suppressions=(Suppression(uk.person_id, None, "cease", "operator", AT),)
    )
    assert gate.decide(uk, stopped, AT + timedelta(hours=8)).action == "suppress"


def test_the_webhook_body_is_checked_field_by_field() -> None:
    good = {
        "event_id": "e-1", "task_id": "t-1", "outcome": "not_home",
        "arrived_at": "2026-11-28T10:05:00+08:00", "departed_at": "2026-11-28T10:09:00+08:00",
        "collectors": ["A", "B"], "id_shown": True, "entered": False, "entry_consent": False,
        "people": [], "recording": {"sha256": "a" * 64, "started_at": "2026-11-28T10:04:00Z",
                                    "ended_at": "2026-11-28T10:10:00Z"},
    }  # fmt: skip
    report = parse_report(json.dumps(good).encode())
    assert (report.recording_started_at, report.detail["at_workplace"]) == (
        datetime(2026, 11, 28, 10, 4, tzinfo=UTC), False
    )  # fmt: skip
    for bad, field in (({**good, "colour": "red"}, "colour"),
                       ({**good, "id_shown": "yes"}, "id_shown"),
                       ({**good, "recording": {"sha256": "x"}}, "recording.started_at"),
                       ({**good, "departed_at": "2026-11-28 10:09"}, "departed_at")):  # fmt: skip
        with pytest.raises(VisitInputError, match=field):
            parse_report(json.dumps(bad).encode())


def test_a_conversation_at_the_door_counts_in_the_call_caps() -> None:
    gate = ComplianceGate(PACKS, jitter_s=0)
    call = make_intent(Channel.VOICE, jurisdiction="US", timezone="America/New_York")
    morning = AT + timedelta(hours=14)  # 11:00 in New York
    visit = ContactAttempt(
        "v-1", call.debt_id, Channel.VISIT, morning - timedelta(days=2),
        dial_outcome=DialOutcome.CONVERSATION,
    )  # fmt: skip
    decision = gate.decide(call, ContactHistory(call.person_id, (visit,)), morning)
    assert (decision.action, decision.rule_id) == ("defer", "US.calls.after_visit_conversation")
    not_home = dataclasses.replace(visit, dial_outcome=DialOutcome.NO_ANSWER)
    assert gate.decide(call, ContactHistory(call.person_id, (not_home,)), morning).action == (
        "allow"
    )
    # ... and a visit is not gated by a call cap: the 7-day visit cap is its own.
    door = make_intent(Channel.VISIT, jurisdiction="US", timezone="America/New_York")
    talked = ContactAttempt("c-1", door.debt_id, Channel.VOICE, morning - timedelta(days=1),
                            dial_outcome=DialOutcome.CONVERSATION)  # fmt: skip
    assert gate.decide(door, ContactHistory(door.person_id, (talked,)), morning).action == "allow"


def test_the_visit_site_travels_in_the_intent_only_when_set() -> None:
    plain = make_intent(Channel.VISIT)
    assert b"territory" not in encode_intent(plain)  # every other intent encodes as before
    address = dataclasses.replace(
        plain.recipient.postal_address, territory="shanghai-pudong", latitude="31.2304",
        longitude="121.5200",
    )  # fmt: skip
    sited = dataclasses.replace(
        plain, recipient=dataclasses.replace(plain.recipient, postal_address=address)
    )
    assert decode_intent(encode_intent(sited)) == sited
    for bad in ("91", "NaN", "north"):
        body = encode_intent(sited).replace(b'"31.2304"', f'"{bad}"'.encode())
        with pytest.raises(DecodeError, match=r"recipient\.postal_address\.latitude"):
            decode_intent(body)
    no_address = dataclasses.replace(plain.recipient, postal_address=None)
    body = encode_intent(dataclasses.replace(plain, recipient=no_address))
    with pytest.raises(DecodeError, match="a visit intent needs postal_address"):
        decode_intent(body)


def test_a_book_row_with_bad_coordinates_names_the_column() -> None:
    import csv

    from dunning.producers.accounts import RowError, account_from_row

    with (CONFIG / "accounts.visits.csv").open(encoding="utf-8") as handle:
        row = next(csv.DictReader(handle))
    account = account_from_row(row)
    assert account.address is not None
    assert (account.address.territory, account.address.latitude) == ("shanghai-pudong", "31.2304")
    with pytest.raises(RowError) as caught:
        account_from_row({**row, "longitude": "181"})
    assert caught.value.column == "longitude"
