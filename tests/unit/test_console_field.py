"""The collectors' section of the console on a SQLite ledger, the sample visit book evaluated
and served with the clock pinned: who sees which tasks and pages, recording an outcome through
the form (incidents with rule ids, refusals that name the field), the audit and the logs."""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import select
from starlette.testclient import TestClient
from structlog.testing import capture_logs
from typer.testing import CliRunner

from dunning.cli.main import app as cli
from dunning.console.app import build_app
from dunning.console.roles import check_collector_link
from dunning.console.security import hash_password
from dunning.console.server import ConsoleOptions, open_console
from dunning.console.web import ConsoleDeps
from dunning.ledger import Ledger
from dunning.ledger.console_store import ConsoleStore
from dunning.ledger.schema import audit
from dunning.ledger.visit_store import VisitTask
from dunning.settings import Settings
from tests.visit_cases import NOW, SHA, evaluated
from tests.visit_rig import CONFIG, VisitRig, collector

PASSWORD = "correct horse battery staple"
#: The Pudong team (C-1, C-2) has both Pudong tasks; C-5 works Brooklyn, whose task waits.
USERS = (
    ("wang", "collector", "C-1"),
    ("bo", "collector", "C-5"),
    ("vera", "viewer", None),
    ("olga", "operator", None),
    ("ada", "admin", None),
)


@dataclass
class Field:
    console: ConsoleDeps
    tasks: dict[str, VisitTask]

    def client(self, name: str) -> TestClient:
        client = TestClient(build_app(self.console, secret_key="k" * 48))
        answer = client.post(
            "/login",
            data={"csrf_token": csrf(client, "/login"), "name": name, "password": PASSWORD},
            follow_redirects=False,
        )
        assert answer.status_code == 303
        return client

    def audit_rows(self, event: str) -> list[tuple[str | None, dict[str, Any]]]:
        with self.console.ledger._engine.connect() as conn:
            rows = conn.execute(
                select(audit.c.intent_id, audit.c.detail).where(audit.c.event == event)
            ).all()
        return [(intent_id, json.loads(detail or "{}")) for intent_id, detail in rows]


@pytest.fixture
async def field(tmp_path: Path) -> AsyncIterator[Field]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    rig = VisitRig(url, NOW)
    try:
        tasks = await evaluated(rig)
    finally:
        rig.close()
    settings = Settings(broker_url="memory://", database_url=url, config_dir=CONFIG, now=NOW)
    with open_console(settings, ConsoleOptions()) as console:
        console.secure_cookies = False
        for name, role, linked in USERS:
            console.store.add_user(
                name, role, hash_password(PASSWORD), now=NOW, replace=False, collector_id=linked
            )
        yield Field(console, tasks)


def csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None, path
    return found.group(1)


def nav(html: str) -> list[str]:
    return re.findall(r'data-section="([^"]+)"', html)


def visit(**changes: str | list[str]) -> dict[str, Any]:
    """A form for a visit at 21:05–21:20 Shanghai time (the window closes at 22:00), both
    collectors on site, identification shown, recorded throughout; ``changes`` override."""
    form: dict[str, Any] = {
        "outcome": "met_debtor", "arrived": "21:05", "departed": "21:20",
        "collector": ["C-1", "C-2"], "id_shown": "on", "person": ["debtor"],
        "recording_sha256": SHA, "recording_started": "21:04:30", "recording_ended": "21:21:00",
    }  # fmt: skip
    form.update(changes)
    return {k: v for k, v in form.items() if v != ""}


def post_outcome(client: TestClient, task: VisitTask, form: dict[str, Any]) -> Any:
    path = f"/field/tasks/{task.task_id}"
    return client.post(f"{path}/outcome", data={"csrf_token": csrf(client, path), **form})


async def test_a_collector_lands_on_its_visits_and_sees_no_other_page(field: Field) -> None:
    client = TestClient(build_app(field.console, secret_key="k" * 48))
    answer = client.post(
        "/login",
        data={"csrf_token": csrf(client, "/login"), "name": "wang", "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.headers["location"] == "/field"
    listing = client.get("/field")
    assert listing.status_code == 200
    assert nav(listing.text) == ["Visits"]
    pudong = [field.tasks["CN-300002"], field.tasks["CN-300001"]]
    shown = re.findall(r'data-task="([0-9a-f]+)"', listing.text)
    # Both close at 22:00 local: the higher priority (more days past due) first.
    assert shown == [t.task_id for t in sorted(pudong, key=lambda t: -t.priority)]
    assert field.tasks["US-400001"].task_id not in listing.text
    for path in ("/", "/people", "/today", "/reports", "/dead-letters", "/admin/users"):
        assert client.get(path).status_code == 403, path


async def test_a_collector_of_another_team_sees_none_of_the_tasks(field: Field) -> None:
    client = field.client("bo")
    task = field.tasks["CN-300001"]
    assert task.task_id not in client.get("/field").text
    assert client.get(f"/field/tasks/{task.task_id}").status_code == 404
    token = csrf(client, "/field")
    answer = client.post(
        f"/field/tasks/{task.task_id}/outcome", data={"csrf_token": token, **visit()}
    )
    assert answer.status_code == 404
    assert field.console.ledger.visit_outcomes(task.task_id) == []


async def test_viewers_and_operators_have_no_visits_and_an_admin_reads_but_records_nothing(
    field: Field,
) -> None:
    task = field.tasks["CN-300001"]
    for name in ("vera", "olga"):
        client = field.client(name)
        assert "Visits" not in nav(client.get("/").text)
        assert client.get("/field").status_code == 403
        assert client.get(f"/field/tasks/{task.task_id}").status_code == 403
    admin = field.client("ada")
    assert "Visits" in nav(admin.get("/").text)
    page = admin.get(f"/field/tasks/{task.task_id}")
    assert page.status_code == 200
    assert task.address in page.text
    assert 'id="outcome-form"' not in page.text
    assert post_outcome(admin, task, visit()).status_code == 403
    assert field.console.ledger.visit_outcomes(task.task_id) == []


async def test_the_task_page_shows_the_address_window_and_brief(field: Field) -> None:
    task = field.tasks["CN-300001"]
    page = field.client("wang").get(f"/field/tasks/{task.task_id}")
    assert task.address in page.text
    assert "–22:00 local time (Asia/Shanghai)" in page.text
    assert task.brief.splitlines()[0] in page.text
    assert "CN.visit.recording.nifa2018-21" in page.text  # the rules the report meets
    assert field.audit_rows("console_field_task_viewed") == [
        (task.task_id, {"operator": "wang", "collector": "C-1"})
    ]


async def test_an_outcome_without_recording_and_entry_without_consent_shows_its_incidents(
    field: Field,
) -> None:
    task = field.tasks["CN-300001"]
    client = field.client("wang")
    form = visit(recording_sha256="", recording_started="", recording_ended="", entered="on")
    with capture_logs() as logs:
        answer = post_outcome(client, task, form)
    assert answer.status_code == 200
    rules = set(re.findall(r'data-rule="([^"]+)"', answer.text))
    assert rules == {"CN.visit.recording.nifa2018-21", "CN.visit.entry_consent.nifa2018-14"}
    stored = field.console.ledger.visit_outcomes(task.task_id)
    assert [(o["outcome"], o["source"], o["entered"]) for o in stored] == [
        ("met_debtor", "console", True)
    ]
    timeline = field.console.ledger.timeline(task.task_id)
    summaries = " ".join(f"{e.kind} {e.summary}" for e in timeline)
    assert "visit_outcome" in summaries
    recorded = field.audit_rows("console_field_outcome_recorded")
    assert [
        (i, d["operator"], d["collector"], set(d["rule_ids"].split(","))) for i, d in recorded
    ] == [(task.task_id, "wang", "C-1", rules)]
    assert task.address not in json.dumps(logs, default=str, ensure_ascii=False)
    # A second report of the same visit is refused, the first kept.
    again = post_outcome(client, task, visit())
    assert again.status_code == 422
    assert "already has an outcome" in again.text
    assert len(field.console.ledger.visit_outcomes(task.task_id)) == 1


async def test_a_compliant_outcome_raises_nothing_and_a_promise_needs_its_amount(
    field: Field,
) -> None:
    task = field.tasks["CN-300002"]
    client = field.client("wang")
    refused = post_outcome(client, task, visit(outcome="promise_to_pay", promise_date="2026-12-05"))
    assert refused.status_code == 422
    assert "promise_amount: required for promise_to_pay" in refused.text
    assert f'value="{SHA}"' in refused.text  # what was typed is kept
    assert field.console.ledger.visit_outcomes(task.task_id) == []
    unreadable = post_outcome(client, task, visit(arrived="9 pm"))
    assert unreadable.status_code == 422
    assert "arrived: '9 pm' is not a local time" in html.unescape(unreadable.text)
    done = post_outcome(
        client,
        task,
        visit(outcome="promise_to_pay", promise_date="2026-12-05", promise_amount="500.00"),
    )
    assert done.status_code == 200
    assert 'id="no-incidents"' in done.text
    [stored] = field.console.ledger.visit_outcomes(task.task_id)
    assert stored["arrived_at"] == datetime(2026, 11, 28, 13, 5, tzinfo=UTC)
    assert stored["promise_amount"] == "500.00"


async def test_an_outcome_without_the_csrf_token_is_refused(field: Field) -> None:
    task = field.tasks["CN-300001"]
    client = field.client("wang")
    answer = client.post(f"/field/tasks/{task.task_id}/outcome", data=visit())
    assert answer.status_code == 403
    assert field.console.ledger.visit_outcomes(task.task_id) == []


def test_a_collector_login_names_one_active_collector() -> None:
    at = datetime(2026, 11, 28, tzinfo=UTC)
    valid = datetime(2027, 6, 30).date()
    active = collector("C-1", "pudong", credential=valid, training=valid, at=at)
    retired = replace(
        collector("C-9", "pudong", credential=valid, training=valid, at=at), retired_at=at
    )
    known = [active, retired]
    check_collector_link("collector", "C-1", known)
    check_collector_link("viewer", None, known)
    for role, cid, message in (
        ("collector", None, "role collector needs a collector id"),
        ("collector", "C-404", "no collector 'C-404'"),
        ("collector", "C-9", "'C-9' is retired"),
        ("operator", "C-1", "a collector id is for role collector, not operator"),
    ):
        with pytest.raises(ValueError, match=message):
            check_collector_link(role, cid, known)


def test_user_add_links_a_collector_login_only_to_a_known_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger.open(url)
    valid = datetime(2027, 6, 30).date()
    ledger.add_collector(collector("C-1", "pudong", credential=valid, training=valid, at=NOW))
    ledger.close()
    for key in [k for k in os.environ if k.startswith("DUNNING_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("DUNNING_DATABASE_URL", url)
    try:
        runner = CliRunner()
        add = ["console", "user", "add", "wang", "--role", "collector", "--password-stdin"]
        for extra, message in (
            ([], "role collector needs a collector id"),
            (["--collector", "C-404"], "no collector 'C-404' in the collectors table"),
        ):
            refused = runner.invoke(cli, [*add, *extra], input=PASSWORD + "\n")
            assert refused.exit_code == 2
            assert message in refused.output
        viewer = ["console", "user", "add", "vera", "--role", "viewer", "--collector", "C-1"]
        refused = runner.invoke(cli, [*viewer, "--password-stdin"], input=PASSWORD + "\n")
        assert "a collector id is for role collector, not viewer" in refused.output
        added = runner.invoke(cli, [*add, "--collector", "C-1"], input=PASSWORD + "\n")
        assert added.exit_code == 0, added.output
        assert "added console user wang (collector, collector C-1)" in added.output
        store = ConsoleStore.open(url)
        try:
            assert [(u.name, u.collector_id) for u in store.list_users()] == [("wang", "C-1")]
        finally:
            store.close()
    finally:
        structlog.reset_defaults()  # the command configures structlog


async def test_the_users_page_links_a_collector_login_the_same_way(field: Field) -> None:
    admin = field.client("ada")
    token = csrf(admin, "/admin/users")
    form = {"csrf_token": token, "name": "li", "role": "collector", "password": PASSWORD}
    refused = admin.post("/admin/users", data={**form, "collector": "C-404"})
    assert refused.status_code == 400
    assert "no collector &#39;C-404&#39;" in refused.text
    assert field.console.store.get_user("li") is None
    saved = admin.post("/admin/users", data={**form, "collector": "C-2"})
    assert saved.status_code == 200
    user = field.console.store.get_user("li")
    assert user is not None
    assert user.collector_id == "C-2"
    assert field.tasks["CN-300001"].task_id in field.client("li").get("/field").text
