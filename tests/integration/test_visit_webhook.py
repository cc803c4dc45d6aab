"""``POST /visits/outcomes``: a field-service system's signed visit reports, end to end."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from dunning.receipts.app import create_app
from dunning.receipts.server import bind, serving
from dunning.sandbox.twilio_api import TwilioStandIn
from tests.integration.twilio_support import settings_for, standin
from tests.integration.webhook_support import CONFIG, Hook
from tests.visit_cases import NOW, SHA, evaluated
from tests.visit_rig import VisitRig

pytestmark = pytest.mark.integration
__all__ = ["standin"]  # the fixture, imported for pytest


@pytest_asyncio.fixture
async def visited(standin: TwilioStandIn, tmp_path: Path) -> AsyncIterator[tuple[Hook, VisitRig]]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    rig = VisitRig(url, NOW)
    await evaluated(rig)
    sock, base = bind()
    settings = settings_for(standin, base, config_dir=CONFIG, now=NOW)
    try:
        app = create_app(settings, rig.ledger)
        async with serving(app, sock), httpx.AsyncClient(timeout=30) as http:
            yield Hook(base, app, rig.ledger, settings, http), rig
    finally:
        rig.close()


def payload(rig: VisitRig, account: str, **changes: Any) -> dict[str, Any]:
    (task,) = [t for t in rig.ledger.visit_tasks() if t.account_id == account]
    arrived = task.window_opens_at + timedelta(minutes=5)
    body: dict[str, Any] = {
        "event_id": f"fsm-{account}", "task_id": task.task_id, "outcome": "not_home",
        "arrived_at": arrived.isoformat(),
        "departed_at": (arrived + timedelta(minutes=4)).isoformat(),
        "collectors": list(task.team), "id_shown": True, "entered": False,
        "entry_consent": False, "people": [],
        "recording": {"sha256": SHA, "started_at": arrived.isoformat(),
                      "ended_at": (arrived + timedelta(minutes=5)).isoformat()},
    }  # fmt: skip
    body.update(changes)
    return body


async def test_a_signed_report_is_recorded_and_its_incidents_answered(
    visited: tuple[Hook, VisitRig],
) -> None:
    hook, rig = visited
    body = payload(rig, "CN-300001", entered=True, entry_consent=False)
    response = await hook.post_json("/visits/outcomes", body)
    assert response.status_code == 200, response.text
    assert [i["rule_id"] for i in response.json()["incidents"]] == [
        "CN.visit.entry_consent.nifa2018-14"
    ]
    again = await hook.post_json("/visits/outcomes", body)  # the system's retry
    assert again.json() == response.json()
    assert len(rig.ledger.visit_outcomes(body["task_id"])) == 1
    task = rig.ledger.visit_task(body["task_id"])
    assert task is not None
    assert task.state == "visited"


async def test_an_unsigned_or_malformed_report_stores_nothing(
    visited: tuple[Hook, VisitRig],
) -> None:
    hook, rig = visited
    body = payload(rig, "CN-300002")
    forged = await hook.post_json("/visits/outcomes", body, secret="not-the-secret")
    assert forged.status_code == 403
    body.pop("recording")
    body["outcome"] = "promise_to_pay"
    bad = await hook.post_json("/visits/outcomes", {**body, "arrived_at": "yesterday"})
    assert bad.status_code == 422
    assert "arrived_at" in bad.json()["error"]
    unpromised = await hook.post_json("/visits/outcomes", body)
    assert unpromised.status_code == 422
    assert "promise_date" in unpromised.json()["error"]
    assert rig.ledger.visit_outcomes(body["task_id"]) == []
    task = rig.ledger.visit_task(body["task_id"])  # still open for a proper report
    assert task is not None
    assert task.state == "assigned"
