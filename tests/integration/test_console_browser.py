"""The operator console in a real browser (headless Chromium), on RabbitMQ and a SQLite ledger,
with an SMS worker sending through a stand-in adapter.

Flows: sign in; the overview updates while the worker sends; find a person by phone number and
open the timeline; replay one dead letter (dry run, then for real) and see it sent once; a
viewer cannot replay and sees masked numbers; a POST without the CSRF token is refused.
With DUNNING_CONSOLE_SCREENSHOTS set, each page is saved as a PNG there.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from dunning.broker import open_publisher
from dunning.broker.base import OutboundMessage, Publisher
from dunning.broker.topology import INTENTS_EXCHANGE, build_topology
from dunning.channels.base import SendResult
from dunning.console.security import hash_password
from dunning.console.server import ConsoleOptions, console_app, open_console
from dunning.errors import PermanentChannelError
from dunning.intents import Channel, ContactIntent, encode_intent
from dunning.ledger import Ledger
from dunning.ledger.schema import audit
from dunning.records import IntentState
from dunning.settings import Settings
from tests.console_support import ConsoleServer, WorkerThread, chromium, screenshot
from tests.factories import make_intent
from tests.services import rabbitmq_vhost_url, reset_rabbitmq_topology

pytestmark = pytest.mark.timeout(240)

CONFIG = Path(__file__).resolve().parents[2] / "config"
PASSWORD = "correct horse battery staple"


class Stand:
    """What the flows share: the ledger, the broker, the worker's sends and the console."""

    def __init__(self, settings: Settings, ledger: Ledger, publisher: Publisher) -> None:
        self.settings = settings
        self.ledger = ledger
        self.publisher = publisher
        self.sent: list[str] = []
        self.broken: set[str] = set()  # intents whose send fails for good
        self.url = ""
        self.worker: WorkerThread | None = None

    async def send(self, intent: ContactIntent, attempt: int) -> SendResult:
        if intent.intent_id in self.broken:
            raise PermanentChannelError("21211: the 'To' number is not a valid phone number")
        self.sent.append(intent.intent_id)
        return SendResult(provider_ref=f"SM{len(self.sent):032d}", status="queued")

    def intent(self, account: str, phone: str = "+12025550143") -> ContactIntent:
        now = datetime.now(UTC)
        base = make_intent(
            Channel.SMS,
            account_id=account,
            jurisdiction="US",
            created_at=now - timedelta(minutes=1),
            expires_at=now + timedelta(days=2),
        )
        return dataclasses.replace(base, recipient=dataclasses.replace(base.recipient, phone=phone))

    def publish(self, *intents: ContactIntent) -> None:
        self.publisher.publish_many(
            OutboundMessage(INTENTS_EXCHANGE, "sms", encode_intent(i), {}, message_id=i.intent_id)
            for i in intents
        )

    def console_audit(self, event: str) -> list[tuple[str | None, dict[str, Any]]]:
        with self.ledger._engine.connect() as conn:
            rows = conn.execute(
                select(audit.c.intent_id, audit.c.detail).where(audit.c.event == event)
            ).all()
        return [(intent_id, json.loads(detail or "{}")) for intent_id, detail in rows]


@pytest.fixture(scope="module")
def stand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stand]:
    url = rabbitmq_vhost_url("dunning_console_browser")
    reset_rabbitmq_topology(url)
    folder = tmp_path_factory.mktemp("console")
    settings = Settings(
        broker_url=url,
        database_url=f"sqlite:///{folder / 'ledger.db'}",
        config_dir=CONFIG,
        letter_outbox=folder / "letters",
        retry_delays_s=(1,),
        max_attempts=1,
    )
    ledger = Ledger.open(settings.database_url)
    publisher = open_publisher(url, build_topology())
    stand = Stand(settings, ledger, publisher)
    options = ConsoleOptions()
    with open_console(settings, options) as console:
        for name, role in (("olga", "operator"), ("vera", "viewer"), ("ada", "admin")):
            console.store.add_user(
                name, role, hash_password(PASSWORD), now=datetime.now(UTC), replace=False
            )
        with ConsoleServer(console_app(console, options)) as server:
            stand.url = server.url
            with WorkerThread(settings, ledger, stand.send) as worker:
                stand.worker = worker
                yield stand
    publisher.close()
    ledger.close()
    reset_rabbitmq_topology(url)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "profile") as driver:
        driver.implicitly_wait(0)
        yield driver


def wait(driver: Any, condition: Any, timeout_s: float = 20) -> Any:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(driver, timeout_s, ignored_exceptions=ignored).until(condition)


def text_of(driver: Any, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.ID, element_id).text)


def find(driver: Any, how: str, what: str) -> Any:
    """The element, once the page has it (a click's page may still be on its way)."""
    return wait(driver, lambda d: (d.find_elements(how, what) or [None])[0])


def by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return find(driver, By.ID, element_id)


def sign_in(driver: Any, stand: Stand, name: str, password: str = PASSWORD) -> None:
    from selenium.webdriver.common.by import By

    driver.get(stand.url + "/login")
    by_id(driver, "name").send_keys(name)
    by_id(driver, "password").send_keys(password)
    by_id(driver, "sign-in").click()
    # The answer has arrived once the page shows who is signed in, or why not.
    wait(
        driver,
        lambda d: (
            d.find_elements(By.ID, "signed-in-as") or d.find_elements(By.CSS_SELECTOR, "p.error")
        ),
    )


def sms_cell(driver: Any, field: str) -> str:
    from selenium.webdriver.common.by import By

    cell = driver.find_element(By.CSS_SELECTOR, f'tr[data-channel="sms"] td[data-field="{field}"]')
    return str(cell.text)


def test_sign_in_refuses_a_wrong_password_and_opens_the_overview(
    stand: Stand, browser: Any
) -> None:
    browser.get(stand.url + "/")
    assert browser.current_url.endswith("/login")  # not signed in: sent to the login page
    screenshot(browser, "login")
    sign_in(browser, stand, "olga", "not the password at all")
    assert "wrong user name or password" in browser.page_source
    sign_in(browser, stand, "olga")
    assert by_id(browser, "signed-in-as").text == "olga (operator)"
    assert browser.current_url == stand.url + "/"


def test_the_overview_updates_while_a_worker_sends(stand: Stand, browser: Any) -> None:
    assert stand.worker is not None
    sign_in(browser, stand, "olga")
    before = int(sms_cell(browser, "sent_last_minutes"))
    browser.execute_script("window.sameDocument = true;")
    done = stand.worker.counter.counts["sent"]
    stand.publish(*(stand.intent(f"overview-{n}") for n in range(3)))
    stand.worker.wait_for(lambda c: c.get("sent", 0) >= done + 3)
    wait(browser, lambda d: sms_cell(d, "sent_last_minutes") == str(before + 3))
    # Updated in place by the page's script, not by a reload.
    assert browser.execute_script("return window.sameDocument === true;")
    assert sms_cell(browser, "consumers") in {"1", "-"}
    screenshot(browser, "overview")


def test_find_a_person_by_phone_and_open_the_timeline(stand: Stand, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    assert stand.worker is not None
    intent = stand.intent("timeline-1", phone="+12025550199")
    done = stand.worker.counter.counts["sent"]
    stand.publish(intent)
    stand.worker.wait_for(lambda c: c.get("sent", 0) >= done + 1)
    sign_in(browser, stand, "olga")
    browser.get(stand.url + "/people")
    Select(by_id(browser, "search-kind")).select_by_value("phone")
    by_id(browser, "search-value").send_keys("+1 (202) 555-0199")  # normalised to E.164
    by_id(browser, "search").click()
    assert "+12025550199" not in browser.current_url  # searched by POST
    screenshot(browser, "people-search")
    find(browser, By.LINK_TEXT, intent.person_id).click()
    section = find(browser, By.CSS_SELECTOR, f'section[data-intent="{intent.intent_id}"]')
    assert section.find_element(By.CSS_SELECTOR, ".state").text == "sent"
    assert section.find_element(By.CSS_SELECTOR, ".phone").text == "+12025550199"
    rendered = section.find_element(By.CSS_SELECTOR, ".rendered").text
    assert rendered
    assert "not rendered" not in rendered
    screenshot(browser, "person")


def _dead_intent(stand: Stand, account: str) -> ContactIntent:
    assert stand.worker is not None
    intent = stand.intent(account)
    stand.broken.add(intent.intent_id)
    dead = stand.worker.counter.counts["dead"]
    stand.publish(intent)
    stand.worker.wait_for(lambda c: c.get("dead", 0) >= dead + 1)
    assert stand.ledger.get_state(intent.intent_id) is IntentState.DEAD
    stand.broken.discard(intent.intent_id)  # the fault is fixed; a replay will be sent
    return intent


def test_replay_one_dead_letter_dry_run_first_then_sent_once(stand: Stand, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    assert stand.worker is not None
    intent = _dead_intent(stand, "replay-1")
    sign_in(browser, stand, "olga")
    browser.get(stand.url + "/dead-letters?channel=sms")
    screenshot(browser, "dead-letters")
    find(browser, By.LINK_TEXT, intent.intent_id).click()
    assert "+12025550143" in by_id(browser, "dead-body").text  # an operator sees the number
    screenshot(browser, "dead-letter")
    by_id(browser, "replay-dry-run").click()
    assert by_id(browser, "replay-count").text == "1"
    assert "Would replay" in by_id(browser, "replay-summary").text
    screenshot(browser, "replay-dry-run")
    assert stand.ledger.get_state(intent.intent_id) is IntentState.DEAD  # nothing changed
    assert intent.intent_id not in stand.sent

    sent = stand.worker.counter.counts["sent"]
    by_id(browser, "replay-for-real").click()
    wait(browser, lambda d: text_of(d, "replay-summary").startswith("Replayed"))
    assert by_id(browser, "replay-count").text == "1"
    stand.worker.wait_for(lambda c: c.get("sent", 0) >= sent + 1)
    assert stand.sent.count(intent.intent_id) == 1
    assert stand.ledger.get_state(intent.intent_id) is IntentState.SENT
    replays = [d for i, d in stand.console_audit("console_replay") if i == intent.intent_id]
    assert [d["operator"] for d in replays] == ["olga"]
    assert any(d["operator"] == "olga" for _, d in stand.console_audit("console_replay_dry_run"))


def test_a_viewer_sees_masked_numbers_and_cannot_replay(stand: Stand, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    intent = _dead_intent(stand, "viewer-1")
    sign_in(browser, stand, "vera")
    browser.get(stand.url + f"/dead-letters/{intent.intent_id}")
    body = by_id(browser, "dead-body").text
    assert "+12025550143" not in body
    assert "0143" in body  # masked, last four digits kept
    assert browser.find_elements(By.ID, "replay-dry-run") == []
    # The form is not shown; posting it anyway (with the viewer's valid token) is refused.
    token = find(browser, By.NAME, "csrf_token").get_attribute("value")
    status = browser.execute_script(
        "const body = new URLSearchParams(arguments[0]);"
        "return fetch('/dead-letters/replay', {method: 'POST', body}).then(r => r.status);",
        {"csrf_token": token, "intent_id": intent.intent_id, "mode": "dry_run"},
    )
    assert status == 403
    assert stand.ledger.get_state(intent.intent_id) is IntentState.DEAD
    assert not [i for i, _ in stand.console_audit("console_replay") if i == intent.intent_id]


def test_a_post_without_the_csrf_token_is_refused(stand: Stand, browser: Any) -> None:
    intent = _dead_intent(stand, "csrf-1")
    sign_in(browser, stand, "olga")
    status = browser.execute_script(
        "const body = new URLSearchParams(arguments[0]);"
        "return fetch('/dead-letters/replay', {method: 'POST', body}).then(r => r.status);",
        {"intent_id": intent.intent_id, "mode": "dry_run"},
    )
    assert status == 403
    dry_runs = [d.get("filter", {}) for _, d in stand.console_audit("console_replay_dry_run")]
    assert not [f for f in dry_runs if f.get("intent_id") == intent.intent_id]


def test_the_other_pages_render_for_an_admin(stand: Stand, browser: Any) -> None:
    sign_in(browser, stand, "ada")
    for path, name, marker in (
        ("/today", "today", "total-sent"),
        ("/reports", "reports", "Champion / challenger variants"),
        ("/admin/users", "users", "Console users"),
        ("/admin/audit", "audit", "Console actions"),
    ):
        browser.get(stand.url + path)
        assert marker in browser.page_source, path
        screenshot(browser, name)
