"""A cycle furnished through the ledger, exported twice, then corrected the next cycle.

November: U1 (first party, notified), U2 (third party, never notified: excluded), U3 (third
party, notified, disputed: XB), U4 (first party, notified, undisputed). December: U1 is paid,
U4 disputes after its November furnishing, U3 is deleted for identity theft.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from dunning.bureau.export import Exclusion, export_cycle
from dunning.bureau.metro2 import Furnisher, parse_metro2
from dunning.bureau.records import record_from_row
from dunning.bureau.report import cycle_report
from dunning.ledger import Ledger
from tests.bureau_rig import DEC, NOV, BureauRig, bureau_intent, us_account

FURNISHER = Furnisher("FURNISHER01", "EXAMPLE CONSUMER FINANCE")


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


def export(ledger: Ledger, cycle: str, out: Path, fmt: str = "metro2") -> dict[str, object]:
    records = (record_from_row(row) for row in ledger.cycle_rows(cycle, batch=2))
    exclusions = [Exclusion(*row) for row in ledger.cycle_exclusions(cycle)]
    return export_cycle(records, exclusions, cycle=cycle, fmt=fmt,  # type: ignore[arg-type]
                        out_dir=out, furnisher=FURNISHER).manifest_data  # fmt: skip


async def november(ledger: Ledger) -> BureauRig:
    rig = BureauRig(ledger, NOV)
    for account in ("U1", "U3", "U4"):
        rig.notice(account, NOV - timedelta(days=20))
    rig.flag("U3", "dispute", NOV - timedelta(days=2))
    kinds = [
        await rig.furnish(bureau_intent("U1", NOV, 111, us_account("U1"))),
        await rig.furnish(bureau_intent("U2", NOV, 95, us_account("U2", "third_party"))),
        await rig.furnish(bureau_intent("U3", NOV, 140, us_account("U3", "third_party"))),
        await rig.furnish(bureau_intent("U4", NOV, 75, us_account("U4"))),
    ]
    assert kinds == ["sent", "gated", "sent", "sent"]
    return rig


async def test_an_account_without_a_notice_is_excluded_with_its_rule(
    ledger: Ledger, tmp_path: Path
) -> None:
    await november(ledger)
    manifest = export(ledger, "2026-11", tmp_path / "out")
    assert manifest["excluded"] == [{
        "account_id": "U2", "rule_id": "US.stage.late.1006.30a",
        "reason": "no logged prior notice before credit-bureau reporting (12 CFR 1006.30(a))",
    }]  # fmt: skip
    text = (tmp_path / "out" / "metro2-2026-11.txt").read_text("ascii")
    parsed = parse_metro2(text)
    accounts = {b["consumer_account_number"]: b for b, _ in parsed.records}
    assert sorted(accounts) == ["U1", "U3", "U4"]
    assert accounts["U1"]["account_status"] == "80"
    assert accounts["U1"]["compliance_condition_code"] == ""
    assert (accounts["U3"]["account_status"], accounts["U3"]["compliance_condition_code"]) == (
        "93", "XB",
    )  # fmt: skip
    assert manifest["by_status"] == {"78": 1, "80": 1, "93": 1}
    assert manifest["records"] == parsed.trailer["total_base_records"] == 3
    assert manifest["original_creditor_segments"] == 1


async def test_exporting_a_cycle_again_gives_the_same_bytes(ledger: Ledger, tmp_path: Path) -> None:
    await november(ledger)
    first = export(ledger, "2026-11", tmp_path / "a")
    second = export(ledger, "2026-11", tmp_path / "b")
    for name in ("metro2-2026-11.txt", "manifest-2026-11-metro2.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first == second
    data = (tmp_path / "a" / "metro2-2026-11.txt").read_bytes()
    import hashlib

    assert first["sha256"] == hashlib.sha256(data).hexdigest()
    on_disk = json.loads((tmp_path / "a" / "manifest-2026-11-metro2.json").read_text("utf-8"))
    assert on_disk == first


async def test_the_next_cycle_reports_paid_xb_after_a_late_dispute_and_a_deletion(
    ledger: Ledger, tmp_path: Path
) -> None:
    rig = await november(ledger)
    rig.flag("U4", "dispute", DEC - timedelta(days=3))  # after U4 was furnished
    assert await rig.furnish(bureau_intent("U1", DEC, 139, us_account("U1", paid=True))) == "sent"
    deleted = us_account("U3", "third_party", delete_reason="identity_theft")
    assert await rig.furnish(bureau_intent("U3", DEC, 168, deleted)) == "sent"
    assert await rig.furnish(bureau_intent("U4", DEC, 103, us_account("U4"))) == "sent"
    export(ledger, "2026-12", tmp_path / "dec")
    parsed = parse_metro2((tmp_path / "dec" / "metro2-2026-12.txt").read_text("ascii"))
    accounts = {b["consumer_account_number"]: b for b, _ in parsed.records}
    assert (accounts["U1"]["account_status"], accounts["U1"]["current_balance"]) == ("13", 0)
    assert accounts["U1"]["payment_rating"] == "3"  # it was 90-119 days late in November
    assert accounts["U1"]["payment_history_profile"] == "3" + "B" * 23
    assert accounts["U3"]["account_status"] == "DF"
    assert (accounts["U4"]["account_status"], accounts["U4"]["compliance_condition_code"]) == (
        "80", "XB",
    )  # fmt: skip
    assert accounts["U4"]["date_of_first_delinquency"] == us_account("U4").due_date
    assert parsed.trailer["total_status_df"] == 1
    assert parsed.trailer["total_status_13"] == 1


async def test_the_report_counts_statuses_conditions_and_exclusions(ledger: Ledger) -> None:
    await november(ledger)
    records = [record_from_row(r) for r in ledger.cycle_rows("2026-11")]
    exclusions = [Exclusion(*row) for row in ledger.cycle_exclusions("2026-11")]
    report = cycle_report("2026-11", records, exclusions, NOV).as_dict()
    assert report["by_status"] == {"78": 1, "80": 1, "93": 1}
    assert report["by_compliance_condition"] == {"XB": 1}
    assert report["excluded_by_rule"] == {"US.stage.late.1006.30a": 1}


async def test_a_cn_account_goes_to_the_cn_csv_and_not_to_metro2(
    ledger: Ledger, tmp_path: Path
) -> None:
    rig = BureauRig(ledger, NOV)
    rig.notice("C1", NOV - timedelta(days=1), jurisdiction="CN")
    cn = bureau_intent("C1", NOV, 70, us_account("C1"), jurisdiction="CN")
    assert await rig.furnish(cn) == "sent"
    metro2 = export(ledger, "2026-11", tmp_path / "out")
    csv_manifest = export(ledger, "2026-11", tmp_path / "out", fmt="cn-csv")
    assert (metro2["records"], csv_manifest["records"]) == (0, 1)
    from dunning.bureau.cn_csv import parse_cn_csv

    text = (tmp_path / "out" / "cn-2026-11.csv").read_text("utf-8")
    (row,) = parse_cn_csv(io.StringIO(text))
    assert (row["account_id"], row["overdue_periods"], row["repayment_status_24"][-1]) == (
        "C1", "3", "3",
    )  # fmt: skip


async def test_a_first_party_record_ahead_of_its_notice_queues_the_notice(ledger: Ledger) -> None:
    import dataclasses

    from dunning.intents import Channel, Recipient

    rig = BureauRig(ledger, NOV)
    intent = bureau_intent("U5", NOV, 70, us_account("U5"))
    intent = dataclasses.replace(intent, recipient=Recipient("Jane Doe", email="jane@example.com"))
    assert await rig.furnish(intent) == "sent"
    record = ledger.bureau_record("U5", "2026-11")
    assert record is not None
    due = record["notice_due_by"]
    assert due == NOV + timedelta(minutes=5, days=30)
    (notice,) = ledger.unpublished(older_than=NOV + timedelta(days=1))
    assert (notice.channel, notice.template.name, notice.debt_id) == (
        Channel.EMAIL, "credit_bureau_notice", "U5",
    )  # fmt: skip
    assert notice.expires_at == due
    assert notice.facts is None
    await rig.furnisher.send(intent, attempt=2)  # written again: still one notice
    assert len(ledger.unpublished(older_than=NOV + timedelta(days=1))) == 1
