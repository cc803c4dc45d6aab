"""The console's roll-rate and bureau reports, a person's promises and disputes, and an
operator verifying a dispute, over a SQLite ledger with the console's clock pinned: the
reports match what the commands compute, a viewer reads but cannot verify, and a verification
lifts the hold as `dunning dispute verify` does, audited with the operator's name."""

from __future__ import annotations

import hashlib
import html
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from dunning.compliance.packs import load_packs
from dunning.console.security import hash_password
from dunning.console.server import ConsoleOptions, open_console
from dunning.console.web import ConsoleDeps
from dunning.intents import ContactIntent
from dunning.ledger import Ledger
from dunning.ledger.risk_store import BucketRow
from dunning.receipts.disputes import DisputeService
from dunning.settings import Settings
from tests.bureau_rig import NOV, BureauRig, bureau_intent, us_account
from tests.factories import T0, make_intent
from tests.unit.test_console_pages import CONFIG, NOW, PASSWORD, audited, client_for, csrf, sent

STATEMENT = b"%PDF-1.4 statement of account person-1\n"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleDeps]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger.open(url).close()
    settings = Settings(
        broker_url="memory://",
        database_url=url,
        config_dir=CONFIG,
        now=NOW,
        letter_outbox=tmp_path / "outbox",
    )
    with open_console(settings, ConsoleOptions()) as deps:
        deps.secure_cookies = False
        for name, role in (("olga", "operator"), ("vera", "viewer")):
            deps.store.add_user(name, role, hash_password(PASSWORD), now=NOW, replace=False)
        yield deps


def cells(page: str) -> str:
    return html.unescape(page)


# --- reports ----------------------------------------------------------------------------------


def record_rolls(console: ConsoleDeps) -> None:
    """Three accounts 30 days before the clock's day and on it: A1 rolls 1-30 → 31-60, A2 is
    paid, A3 stays current but is not recorded on the end day."""
    start, end = NOW.date() - timedelta(days=30), NOW.date()
    console.ledger.record_buckets(
        start,
        [
            BucketRow("A1", "1-30", "prime", "champion"),
            BucketRow("A2", "1-30", "subprime", "challenger"),
            BucketRow("A3", "current", "prime", "champion"),
        ],
    )
    console.ledger.record_buckets(
        end, [BucketRow("A1", "31-60", "prime", "x"), BucketRow("A2", "paid", "subprime", "x")]
    )


def test_a_viewer_reads_the_roll_matrix_of_the_last_30_days_by_default(
    console: ConsoleDeps,
) -> None:
    record_rolls(console)
    page = cells(client_for(console, "vera").get("/reports").text)
    start = NOW.date() - timedelta(days=30)
    assert f"Roll rates {start} → {NOW.date()}" in page
    assert "<td>1 (50.0%)</td>" in page  # 1-30 → 31-60 and 1-30 → paid: one of two each
    assert "<td>2</td>" in page  # the 1-30 row's accounts
    assert "1 accounts of" in page  # A3, not on the end day
    assert "Not available yet" not in page


def test_the_roll_matrix_by_segment_and_for_days_chosen(console: ConsoleDeps) -> None:
    record_rolls(console)
    client = client_for(console, "vera")
    start = NOW.date() - timedelta(days=30)
    page = cells(client.get(f"/reports?from={start}&to={NOW.date()}&by=segment").text)
    assert "segment prime" in page
    assert "segment subprime" in page
    assert page.count("<td>1 (100.0%)</td>") == 2
    empty = cells(client.get(f"/reports?from={start}&to={start + timedelta(days=1)}").text)
    assert "No account recorded on both days" in empty


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("from=2026-13-01", "roll rates from: '2026-13-01' is not a day (YYYY-MM-DD)"),
        ("from=2026-11-20&to=2026-11-01", "roll rates: to 2026-11-01 is before from 2026-11-20"),
        ("by=region", "roll rates by: 'region' is not one of segment, variant"),
        ("cycle=11/2026", "bureau cycle: cycle '11/2026' is not YYYY-MM"),
    ],
)
def test_a_bad_report_parameter_is_named_and_the_defaults_shown(
    console: ConsoleDeps, query: str, message: str
) -> None:
    answer = client_for(console, "vera").get(f"/reports?{query}")
    assert answer.status_code == 400
    assert message in cells(answer.text)
    assert f"Bureau cycle {NOW:%Y-%m}" in answer.text


async def test_the_bureau_cycle_counts_status_and_exclusions_by_rule(
    console: ConsoleDeps,
) -> None:
    rig = BureauRig(console.ledger, NOV)
    rig.notice("U1", NOV - timedelta(days=20))
    assert await rig.furnish(bureau_intent("U1", NOV, 111, us_account("U1"))) == "sent"
    third_party = bureau_intent("U2", NOV, 95, us_account("U2", "third_party"))
    assert await rig.furnish(third_party) == "gated"
    cycle = f"{NOV:%Y-%m}"
    page = cells(client_for(console, "vera").get(f"/reports?cycle={cycle}").text)
    assert f"Bureau cycle {cycle}" in page
    assert "<td>status</td><td>80</td><td>1</td>" in page
    assert "<td>excluded</td><td>US.stage.late.1006.30a</td><td>1</td>" in page
    assert "1 records furnished, 1 accounts excluded" in page
    other = cells(client_for(console, "vera").get("/reports?cycle=2026-10").text)
    assert "No record and no exclusion in this cycle." in other


# --- a person's promises and disputes -----------------------------------------------------------


def packs_service(console: ConsoleDeps) -> DisputeService:
    packs = load_packs(console.settings.config_dir / "compliance.toml")
    return DisputeService(console.ledger, console.clock, packs)


async def disputed(console: ConsoleDeps) -> tuple[ContactIntent, str]:
    """A person texted, with a kept promise, an open one, and a dispute opened by an agent."""
    intent = make_intent(account_id="person-1")
    sent(console, intent)
    kept = console.ledger.add_promise(
        intent.account_id, None, pay_by=T0.date(), amount=Decimal("50.00"), source="sms",
        now=T0 - timedelta(days=3),
    )  # fmt: skip
    assert console.ledger.close_promise(kept.id, "kept", now=T0)
    console.ledger.add_promise(
        intent.account_id, None, pay_by=T0.date() + timedelta(days=7), amount=None,
        source="keypad", now=T0,
    )  # fmt: skip
    opened = await packs_service(console).from_operator(intent.account_id, note="wrong amount")
    assert opened is not None
    assert opened.fresh
    return intent, opened.rule_id


async def test_a_person_shows_promises_and_disputes_with_rule_ids(console: ConsoleDeps) -> None:
    intent, rule_id = await disputed(console)
    page = cells(client_for(console, "vera").get(f"/people/{intent.person_id}").text)
    promises = page.split('id="promises"')[1].split("</table>")[0]
    assert promises.count("<td>made</td>") == 2
    assert promises.count("<td>kept</td>") == 1
    assert "<td>sms</td>" in promises
    assert "<td>keypad</td>" in promises
    assert "<td>50.00</td>" in promises
    disputes = page.split('id="disputes"')[1].split("</table>")[0]
    assert f"<td>dispute_opened</td><td>{rule_id}</td><td>{intent.debt_id}</td>" in disputes
    assert "<td>operator</td>" in disputes
    assert "Verify dispute" not in page  # a viewer is not shown the form
    assert "+8613800138000" not in page


async def test_a_viewer_cannot_verify_a_dispute(console: ConsoleDeps) -> None:
    intent, _ = await disputed(console)
    viewer = client_for(console, "vera")
    token = csrf(viewer, f"/people/{intent.person_id}")
    refused = viewer.post(
        f"/people/{intent.person_id}/disputes/verify",
        data={"csrf_token": token, "account_id": intent.account_id, "confirm": intent.account_id},
        files={"document": ("statement.pdf", STATEMENT, "application/pdf")},
    )
    assert refused.status_code == 403
    assert len(console.ledger.open_disputes(intent.debt_id)) == 1
    assert audited(console, "console_dispute_verified") == []
    assert audited(console, "dispute_verified") == []


async def test_verifying_lifts_the_hold_as_the_command_does(console: ConsoleDeps) -> None:
    intent, rule_id = await disputed(console)
    operator = client_for(console, "olga")
    path = f"/people/{intent.person_id}"
    assert "Verify dispute" in operator.get(path).text
    token = csrf(operator, path)
    form = {"csrf_token": token, "account_id": intent.account_id}
    document = {"document": ("../Statement 11.pdf", STATEMENT, "application/pdf")}
    unconfirmed = operator.post(f"{path}/disputes/verify", data=form, files=document)
    assert unconfirmed.status_code == 400
    assert f"type the account id {intent.account_id} to confirm" in unconfirmed.text
    no_file = operator.post(f"{path}/disputes/verify", data={**form, "confirm": "person-1"})
    assert "choose the verification document" in no_file.text
    no_csrf = operator.post(
        f"{path}/disputes/verify",
        data={"account_id": intent.account_id, "confirm": intent.account_id},
        files=document,
    )
    assert no_csrf.status_code == 403
    assert len(console.ledger.open_disputes(intent.debt_id)) == 1

    done = operator.post(
        f"{path}/disputes/verify", data={**form, "confirm": intent.account_id}, files=document
    )
    assert done.status_code == 200, done.text
    assert "1 dispute hold(s) lifted" in done.text
    assert console.ledger.open_disputes(intent.debt_id) == []
    digest = hashlib.sha256(STATEMENT).hexdigest()
    verified = audited(console, "dispute_verified")
    assert [(d["sha256"], d["document"]) for _, d in verified] == [(digest, "Statement_11.pdf")]
    copies = list((console.settings.letter_outbox / "verifications").glob("*.pdf"))
    assert [c.read_bytes() for c in copies] == [STATEMENT]
    assert [
        (d["operator"], d["account_id"], d["lifted"])
        for _, d in audited(console, "console_dispute_verified")
    ] == [("olga", intent.account_id, 1)]
    after = cells(operator.get(path).text)
    assert f"<td>dispute_verified</td><td>{rule_id}</td>" in after
    assert "Verify dispute" not in after  # no hold left to verify
    assert "Statement_11.pdf" in after
    assert "Statement_11.pdf" not in cells(client_for(console, "vera").get(path).text)
