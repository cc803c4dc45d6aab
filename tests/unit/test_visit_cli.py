"""`dunning collectors`, `dunning visit` and `dunning report incidents` on a SQLite ledger."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from dunning.cli.main import app
from dunning.ledger.visit_store import VisitTask
from tests.visit_cases import NOW, SHA, evaluated
from tests.visit_rig import VisitRig


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for key in [k for k in os.environ if k.startswith("DUNNING_")]:
        monkeypatch.delenv(key)
    yield
    structlog.reset_defaults()  # the commands configure structlog


def invoke(url: str, *args: str, now: datetime = NOW) -> tuple[int, str]:
    env = {"DUNNING_DATABASE_URL": url, "DUNNING_LOG_LEVEL": "error", "COLUMNS": "250",
           "DUNNING_NOW": now.isoformat()}  # fmt: skip
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.output


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'ledger.db'}"


@pytest.fixture
async def task(url: str) -> VisitTask:
    rig = VisitRig(url, NOW)
    try:
        return (await evaluated(rig))["CN-300001"]
    finally:
        rig.close()


def add(url: str, cid: str, *, credential: str = "2027-06-30") -> tuple[int, str]:
    return invoke(
        url, "collectors", "add", cid, "--name", f"Collector {cid}", "--credential", f"X-{cid}",
        "--credential-expires", credential, "--training-expires", "2027-03-31",
        "--territory", "shanghai-pudong",
    )  # fmt: skip


async def test_collectors_are_added_listed_and_retired(url: str, task: VisitTask) -> None:
    assert add(url, "C-10") == (0, "added collector C-10 (shanghai-pudong)\n")
    code, output = add(url, "C-10")
    assert (code, "exists already" in output) == (2, True)
    code, output = add(url, "C-11", credential="30/06/2027")
    assert (code, "--credential-expires" in output) == (2, True)
    code, output = add(url, "C-12", credential="2026-11-27")
    assert code == 0, output
    code, output = invoke(url, "collectors", "list", "--territory", "shanghai-pudong", "--json")
    eligible = {r["collector_id"]: r["eligible_today"] for r in json.loads(output)}
    assert eligible == {"C-1": True, "C-2": True, "C-3": False, "C-4": False, "C-10": True,
                        "C-12": False}  # fmt: skip
    assert invoke(url, "collectors", "retire", "C-10") == (0, "retired collector C-10\n")
    code, output = invoke(url, "collectors", "retire", "C-10")
    assert (code, "no active collector C-10" in output) == (2, True)


async def test_an_outcome_without_a_recording_is_an_incident_in_the_report_and_timeline(
    url: str, task: VisitTask
) -> None:
    arrived = task.window_opens_at + timedelta(minutes=5)
    code, output = invoke(
        url, "visit", "record", task.task_id, "--outcome", "met_debtor",
        "--arrived", arrived.isoformat(),
        "--departed", (arrived + timedelta(minutes=9)).isoformat(),
        "--collector", task.team[0], "--collector", task.team[1], "--id-shown",
        "--person", "debtor", "--json",
    )  # fmt: skip
    assert code == 0, output
    assert [i["rule_id"] for i in json.loads(output)["incidents"]] == [
        "CN.visit.recording.nifa2018-21"
    ]
    until = (NOW + timedelta(hours=1)).isoformat()
    code, output = invoke(url, "report", "incidents", "--since", "1h", "--until", until, "--json")
    assert code == 0, output
    listed = json.loads(output)["incidents"]
    assert [(i["rule_id"], i["intent_id"]) for i in listed] == [
        ("CN.visit.recording.nifa2018-21", task.task_id)
    ]
    code, output = invoke(url, "intent", "show", task.task_id, "--json")
    assert code == 0, output
    timeline = json.loads(output)["timeline"]
    kinds = [(e["kind"], e["summary"]) for e in timeline]
    assert any("visit_outcome" in f"{k} {s}" for k, s in kinds), kinds
    assert any("CN.visit.recording.nifa2018-21" in json.dumps(e) for e in timeline)


async def test_a_report_that_contradicts_itself_exits_2_and_stores_nothing(
    url: str, task: VisitTask
) -> None:
    arrived = task.window_opens_at + timedelta(minutes=5)
    code, output = invoke(
        url, "visit", "record", task.task_id, "--outcome", "promised",
        "--arrived", arrived.isoformat(),
        "--departed", (arrived - timedelta(minutes=1)).isoformat(),
        "--collector", "C-1", "--id-shown", "--recording-sha256", SHA,
    )  # fmt: skip
    assert code == 2, output
    assert "outcome: 'promised' is not one of" in output
    assert "departed_at: earlier than arrived_at" in output
    code, output = invoke(url, "visit", "tasks", "--json")
    assert {t["state"] for t in json.loads(output)} == {"assigned", "waiting"}


async def test_sweep_expires_the_tasks_whose_window_closed(url: str, task: VisitTask) -> None:
    code, output = invoke(url, "visit", "sweep", now=task.window_closes_at)
    assert (code, output) == (0, "expired 2, assigned 0, waiting 1\n")
    code, output = invoke(url, "visit", "tasks", "--state", "expired", "--json")
    expired = json.loads(output)
    assert {t["reason"] for t in expired} == {"the visit window closed before anyone visited"}
    assert task.task_id in {t["task_id"] for t in expired}


def test_a_roster_is_imported_once_and_a_bad_one_names_its_lines(url: str, tmp_path: Path) -> None:
    from dunning.ledger import Ledger

    Ledger.open(url).close()  # migrated
    sample = str(Path(__file__).parents[2] / "config" / "collectors.sample.csv")
    assert invoke(url, "collectors", "import", sample) == (
        0, f"imported 6 collector(s) from {sample}\n",
    )  # fmt: skip
    code, output = invoke(url, "collectors", "import", sample)
    assert (code, "already present, unchanged: C-101" in output) == (0, True)
    bad = tmp_path / "roster.csv"
    bad.write_text(
        "collector_id,name,credential_no,credential_expires,training_expires,territory\n"
        "C-9,A,X-9,2027-01-01,2027-01-01,t\nC-10,B,X-10,tomorrow,2027-01-01,t\n"
        "C-9,C,X-11,2027-01-01,2027-01-01,\n",
        encoding="utf-8",
    )
    code, output = invoke(url, "collectors", "import", str(bad))
    assert code == 2, output
    assert "line 3: credential_expires: not a date" in output
    assert "line 4: territory: required" in output
    assert "collector_id: listed twice" in output
    code, output = invoke(url, "collectors", "list", "--json")
    assert "C-9" not in {r["collector_id"] for r in json.loads(output)}
