"""Property tests: random zones, instants, histories and suppressions vs independent oracles."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from dunning.compliance import ComplianceGate
from dunning.compliance.packs import CapRule
from dunning.intents import Channel, ContactIntent, TemplateRef
from dunning.records import ContactAttempt, DialOutcome, Suppression
from tests.factories import make_intent
from tests.unit.test_compliance_helpers import PACKS, history, pack, window

ZONES = [
    "Asia/Shanghai", "America/New_York", "Europe/London", "Pacific/Kiritimati",
    "Pacific/Pago_Pago", "Australia/Lord_Howe", "America/St_Johns", "Asia/Kathmandu",
    "Pacific/Chatham", "America/Santiago",
]  # fmt: skip
JURISDICTIONS = ["CN", "US", "US-MA", "UK"]
PHONES = ["+12025550143", "+12025550199"]
GATE = ComplianceGate(PACKS, jitter_s=900)

instants = st.datetimes(
    min_value=datetime(2026, 2, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)
outcomes = st.sampled_from([*DialOutcome, None])


def _in_window(at: datetime, intent: ContactIntent) -> bool:
    """Inside the pack's window, or any time for a channel the window does not govern."""
    w = window(intent.jurisdiction)
    if intent.channel is Channel.LETTER:  # the packs leave letters out of their windows
        return True
    local = at.astimezone(ZoneInfo(intent.timezone)).time()
    return w.start <= local.replace(tzinfo=None) < w.end


@st.composite
def intents(draw: st.DrawFn) -> ContactIntent:
    jurisdiction = draw(st.sampled_from(JURISDICTIONS))
    # Contact channels: the bureau step contacts nobody (no window, no opt-out: docs/bureau.md),
    # nor does the legal handover (docs/legal.md)
    channel = draw(
        st.sampled_from([c for c in Channel if c not in (Channel.BUREAU, Channel.LEGAL)])
    )
    return make_intent(
        channel,
        jurisdiction=jurisdiction,
        timezone=draw(st.sampled_from(ZONES)),
        debt_id=draw(st.sampled_from(["debt-a", "debt-b"])),
    )


@settings(max_examples=300, deadline=None)
@given(
    intent=intents(),
    now=instants,
    prior=st.lists(
        st.tuples(st.integers(1, 14 * 24 * 60), st.sampled_from(list(Channel)), outcomes),
        max_size=12,
    ),
)
def test_allow_is_always_inside_the_local_window_and_defer_lands_in_it(
    intent: ContactIntent,
    now: datetime,
    prior: list[tuple[int, Channel, DialOutcome | None]],
) -> None:
    attempts = [
        ContactAttempt("p", intent.debt_id, ch, now - timedelta(minutes=m), PHONES[0], outcome)
        for m, ch, outcome in prior
    ]
    decision = GATE.decide(intent, history(intent, attempts), now)
    assert decision.rule_id
    assert decision.pack_version
    if decision.action == "allow":
        assert _in_window(now, intent)
    elif decision.action == "defer":
        assert decision.until is not None
        assert decision.until > now
        assert _in_window(decision.until, intent)
    else:
        assert decision.action == "refuse"  # no suppressions here: only credit-bureau refusals


def _counts(rule: CapRule, intent: ContactIntent, a: ContactAttempt) -> bool:
    """Oracle, written from the spec rather than from caps.py."""
    if a.channel not in rule.channels:
        return False
    if rule.key == "debt" and a.debt_id != intent.debt_id:
        return False
    if rule.key == "phone" and a.phone != intent.recipient.phone:
        return False
    if a.dial_outcome in (None, DialOutcome.PENDING):
        return True
    if rule.count_outcomes is not None and a.dial_outcome not in rule.count_outcomes:
        return False
    return a.dial_outcome not in rule.exclude_outcomes


def _violations(
    intent: ContactIntent, sent: list[tuple[ContactIntent, ContactAttempt]]
) -> list[str]:
    tz = ZoneInfo(intent.timezone)
    found = []
    for rule in pack(intent.jurisdiction).caps:
        for this, a in sent:
            if this.channel not in rule.channels:
                continue
            earlier = [b for other, b in sent if b.at < a.at and _counts(rule, this, b)]
            if rule.kind == "cooldown":
                day = a.at.astimezone(tz).date()
                if any(
                    b.dial_outcome in rule.trigger_outcomes
                    and (day - b.at.astimezone(tz).date()).days < rule.days
                    for b in earlier
                ):
                    found.append(f"{rule.id} at {a.at}")  # fmt: skip
                continue
            if rule.window == "calendar_day":
                same = [
                    b for b in earlier if b.at.astimezone(tz).date() == a.at.astimezone(tz).date()
                ]
            else:
                same = [b for b in earlier if a.at - b.at < timedelta(days=rule.days)]
            if len(same) + 1 > rule.limit:
                found.append(f"{rule.id} at {a.at}: {len(same) + 1} > {rule.limit}")
    return found


@settings(max_examples=150, deadline=None)
@given(
    base=intents(),
    start=instants,
    steps=st.lists(
        st.tuples(st.integers(1, 600), st.sampled_from([Channel.SMS, Channel.VOICE, Channel.EMAIL]),
                  st.sampled_from(["debt-a", "debt-b"]), st.sampled_from(PHONES), outcomes),
        min_size=1, max_size=60,
    ),
)  # fmt: skip
def test_applying_allowed_attempts_in_sequence_never_exceeds_a_cap(
    base: ContactIntent,
    start: datetime,
    steps: list[tuple[int, Channel, str, str, DialOutcome | None]],
) -> None:
    now = start
    sent: list[tuple[ContactIntent, ContactAttempt]] = []
    recipient = base.recipient
    for gap_min, channel, debt, phone, outcome in steps:
        now += timedelta(minutes=gap_min)
        to = dataclasses.replace(recipient, phone=phone)
        intent = dataclasses.replace(base, channel=channel, debt_id=debt, recipient=to)
        decision = GATE.decide(intent, history(intent, [a for _, a in sent]), now)
        if decision.action == "allow":
            dialled = outcome if channel == Channel.VOICE else None
            sent.append((intent, ContactAttempt("x", debt, channel, now, phone, dialled)))
    assert _violations(base, sent) == []


REASONS = ["opt_out", "cease", "dispute", "attorney", "bankrupt", "deceased", "paid",
           "promise_to_pay", "hardship", "time_barred", "mystery"]  # fmt: skip


def _blocked(intent: ContactIntent, s: Suppression, permitted: frozenset[str]) -> bool:
    """Oracle: does this suppression forbid this intent (docs/compliance.md, "Suppressions")?"""
    if s.person_id != intent.person_id or s.debt_id not in (None, intent.debt_id):
        return False
    if s.reason == "opt_out":
        return s.channel in (None, intent.channel)
    if s.reason == "cease":
        return intent.template.name not in permitted and intent.step not in permitted
    return s.reason != "time_barred"


@settings(max_examples=300, deadline=None)
@given(
    intent=intents(),
    now=instants,
    template=st.sampled_from(["early_reminder", "cease_ack", "lawyer_letter"]),
    raw=st.lists(st.tuples(st.sampled_from(REASONS), st.sampled_from([*Channel, None]),
                           st.sampled_from([None, "debt-a", "debt-b"])), max_size=4),
)  # fmt: skip
def test_never_allow_a_suppressed_person_or_channel(
    intent: ContactIntent,
    now: datetime,
    template: str,
    raw: list[tuple[str, Channel | None, str | None]],
) -> None:
    intent = dataclasses.replace(intent, template=TemplateRef(template, intent.template.locale))
    created = datetime(2026, 1, 1, tzinfo=UTC)
    suppressions = [
        Suppression(intent.person_id, channel, reason, "operator", created, debt)
        for reason, channel, debt in raw
    ]
    decision = GATE.decide(intent, history(intent, suppressions=suppressions), now)
    permitted = pack(intent.jurisdiction).permitted_after_cease or frozenset()
    if any(_blocked(intent, s, permitted) for s in suppressions):
        assert decision.action == "suppress"
    if decision.action == "allow":
        assert not any(_blocked(intent, s, permitted) for s in suppressions)
