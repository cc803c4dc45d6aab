"""The collectors' pages in a real browser (headless Chromium) on a phone-sized window, over a
SQLite ledger where the sample visit book was evaluated and served with the clock pinned.

A collector signs in, sees the team's visits for today, opens one and records the outcome;
`dunning intent show` then tells it. A report without a recording and with entry without
consent is stored with its incidents, whose rule ids the page shows. With
DUNNING_CONSOLE_SCREENSHOTS set, the pages are saved as PNGs there.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from dunning.cli.main import app
from dunning.console.security import hash_password
from dunning.console.server import ConsoleOptions, console_app, open_console
from dunning.ledger.visit_store import VisitTask
from dunning.settings import Settings
from tests.console_support import ConsoleServer, chromium, screenshot
from tests.integration.test_console_browser import PASSWORD, by_id, find, sign_in, wait
from tests.visit_cases import NOW, SHA, VALID, evaluated
from tests.visit_rig import CONFIG, VisitRig, collector

pytestmark = pytest.mark.timeout(240)

#: A phone held upright, in CSS pixels.
PHONE = (390, 844)


@dataclass
class FieldStand:
    url: str
    database_url: str
    tasks: dict[str, VisitTask]


@pytest.fixture
def stand(tmp_path: Path) -> Iterator[FieldStand]:
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    rig = VisitRig(database_url, NOW)
    # A second eligible collector in Brooklyn, so the US task gets a team too.
    rig.ledger.add_collector(collector("C-7", "brooklyn", credential=VALID, training=VALID, at=NOW))
    try:
        tasks = asyncio.run(evaluated(rig))
    finally:
        rig.close()
    settings = Settings(
        broker_url="memory://", database_url=database_url, config_dir=CONFIG, now=NOW
    )
    options = ConsoleOptions()
    with open_console(settings, options) as console:
        for name, linked in (("wang", "C-1"), ("rosa", "C-5")):
            console.store.add_user(
                name, "collector", hash_password(PASSWORD), now=NOW, replace=False,
                collector_id=linked,
            )  # fmt: skip
        with ConsoleServer(console_app(console, options)) as server:
            yield FieldStand(server.url, database_url, tasks)


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "profile") as driver:
        driver.implicitly_wait(0)
        driver.set_window_size(*PHONE)
        yield driver


def set_value(driver: Any, element_id: str, value: str) -> None:
    # Time and date inputs take keys in the browser's locale format; the value is the same
    # everywhere, so it is set as the page's own script would.
    driver.execute_script("arguments[0].value = arguments[1];", by_id(driver, element_id), value)


def tick(driver: Any, css: str) -> None:
    from selenium.webdriver.common.by import By

    box = find(driver, By.CSS_SELECTOR, css)
    if not box.is_selected():
        box.click()


def open_task(driver: Any, stand: FieldStand, account: str) -> VisitTask:
    from selenium.webdriver.common.by import By

    task = stand.tasks[account]
    find(driver, By.CSS_SELECTOR, f'li[data-task="{task.task_id}"] a').click()
    wait(driver, lambda d: d.find_elements(By.ID, "outcome-form"))
    return task


def fill_visit(driver: Any, outcome: str, local: tuple[str, str]) -> None:
    """A visit from ``local[0]`` to ``local[1]`` (local times), both collectors on site."""
    from selenium.webdriver.support.ui import Select

    Select(by_id(driver, "outcome")).select_by_value(outcome)
    set_value(driver, "arrived", local[0])
    set_value(driver, "departed", local[1])
    tick(driver, "#person-debtor")


def submit(driver: Any) -> None:
    from selenium.webdriver.common.by import By

    by_id(driver, "record").click()
    wait(
        driver,
        lambda d: d.find_elements(By.ID, "recorded") or d.find_elements(By.CSS_SELECTOR, "p.error"),
    )


def intent_show(stand: FieldStand, task_id: str) -> dict[str, Any]:
    env = {"DUNNING_DATABASE_URL": stand.database_url, "DUNNING_LOG_LEVEL": "error",
           "DUNNING_NOW": NOW.isoformat()}  # fmt: skip
    result = CliRunner().invoke(app, ["intent", "show", task_id, "--json"], env=env)
    assert result.exit_code == 0, result.output
    report: dict[str, Any] = json.loads(result.output)
    return report


@pytest.fixture(autouse=True)
def command_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The command refuses DUNNING_* names it does not know (the screenshots folder, read by
    # tests.console_support at import, is one).
    for key in [k for k in os.environ if k.startswith("DUNNING_")]:
        monkeypatch.delenv(key)
    yield
    structlog.reset_defaults()  # the command configures structlog


def listed(driver: Any) -> set[str]:
    from selenium.webdriver.common.by import By

    return {
        str(card.get_attribute("data-task"))
        for card in driver.find_elements(By.CSS_SELECTOR, "li[data-task]")
    }


def test_a_collector_records_a_promise_on_a_phone_and_the_timeline_shows_it(
    stand: FieldStand, phone: Any
) -> None:
    sign_in(phone, stand, "rosa")  # type: ignore[arg-type]  # sign_in needs only .url
    assert phone.current_url == stand.url + "/field"
    assert listed(phone) == {stand.tasks["US-400001"].task_id}  # Brooklyn's team only
    # Laid out for the phone: nothing wider than the window.
    assert phone.execute_script("return document.documentElement.scrollWidth;") <= PHONE[0]
    screenshot(phone, "collector-tasks")
    task = open_task(phone, stand, "US-400001")
    assert by_id(phone, "address").text == task.address
    assert "21:00 local time (America/New_York)" in by_id(phone, "window").text
    assert "May not say" in by_id(phone, "brief").text
    # 08:31 to 08:45 in New York (the clock says 08:30), recorded throughout.
    fill_visit(phone, "promise_to_pay", ("08:31", "08:45"))
    tick(phone, "#id_shown")
    by_id(phone, "recording_sha256").send_keys(SHA)
    set_value(phone, "recording_started", "08:30:30")
    set_value(phone, "recording_ended", "08:46:00")
    set_value(phone, "promise_date", "2026-12-05")
    by_id(phone, "promise_amount").send_keys("500.00")
    phone.set_window_size(PHONE[0], 2800)  # the whole form in one picture
    phone.execute_script("window.scrollTo(0, 0);")
    screenshot(phone, "collector-outcome-form")
    phone.set_window_size(*PHONE)
    submit(phone)
    assert by_id(phone, "no-incidents").text == "No rule was broken."
    timeline = intent_show(stand, task.task_id)["timeline"]
    recorded = [e for e in timeline if e["kind"] == "visit_outcome"]
    assert [(e["detail"]["outcome"], e["detail"]["source"]) for e in recorded] == [
        ("promise_to_pay", "console")
    ]
    audited = [e for e in timeline if "console_field_outcome_recorded" in json.dumps(e)]
    assert "rosa" in json.dumps(audited)


def test_no_recording_and_entry_without_consent_show_their_rule_ids(
    stand: FieldStand, phone: Any
) -> None:
    from selenium.webdriver.common.by import By

    sign_in(phone, stand, "wang")  # type: ignore[arg-type]
    assert listed(phone) == {stand.tasks[a].task_id for a in ("CN-300001", "CN-300002")}
    task = open_task(phone, stand, "CN-300002")
    # 21:31 to 21:45 in Shanghai (the clock says 21:30), the window closing at 22:00.
    fill_visit(phone, "met_debtor", ("21:31", "21:45"))
    tick(phone, "#id_shown")
    tick(phone, "#entered")  # and no consent, and no recording
    submit(phone)
    shown = {
        li.get_attribute("data-rule")
        for li in phone.find_elements(By.CSS_SELECTOR, "#incidents li[data-rule]")
    }
    assert shown == {"CN.visit.recording.nifa2018-21", "CN.visit.entry_consent.nifa2018-14"}
    screenshot(phone, "collector-incidents")
    timeline = intent_show(stand, task.task_id)["timeline"]
    flagged = json.dumps([e for e in timeline if e["kind"] == "compliance_incident"])
    assert all(rule in flagged for rule in shown)
