"""`dunning demo` as a user runs it: one command, the whole system, a summary at the end."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from dunning.intents import Channel
from dunning.ledger import Ledger

ROOT = Path(__file__).parents[2]


def test_demo_runs_every_channel_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env["DUNNING_DATA_DIR"] = str(tmp_path)
    env["COLUMNS"] = "200"  # one table row per line
    # The default instant in winter: 13:30 UTC, inside the Shanghai and New York windows only.
    argv = ["demo", "--accounts", "40", "--seed", "7", "--at", "2026-11-28T13:30:00+00:00"]
    done = subprocess.run(
        [sys.executable, "-m", "dunning", *argv],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Intents by stage and channel" in done.stdout
    assert "invalid 'To' number" in done.stdout  # the dead letter and its reason

    ledger = Ledger.open(f"sqlite:///{tmp_path / 'demo' / 'dunning.db'}")
    states = ledger.counts_by_state()
    ledger.close()
    by_channel = {c.value: {s for (ch, s) in states if ch == c.value} for c in Channel}
    # Receipts came back through the signed webhook: SMS and calls reached "delivered".
    assert "delivered" in by_channel["sms"]
    assert "delivered" in by_channel["voice"]
    assert "sent" in by_channel["email"]
    assert "sent" in by_channel["letter"]
    # The deliberately invalid number ended in the dead-letter queue, not in a retry loop.
    assert states[("sms", "dead")] == 1
    assert not any(state in {"queued", "sending"} for _, state in states)

    # Every deferred intent is listed with its reason: here the US contact window, closed before
    # 08:00 in the zones west of New York (which the local-time table shows as closed).
    rows = re.findall(r"│ (\w+) +│ (\w+/[\w/]+) +│ ([^│]+?) +│ +(\d+) │", done.stdout)
    deferred = {(channel, zone, reason): int(n) for channel, zone, reason, n in rows}
    assert sum(deferred.values()) == sum(n for (_, s), n in states.items() if s == "deferred") > 0
    for _channel, zone, reason in deferred:
        assert reason.startswith("US.window.1006.6b1i: outside the contact window 08:00-21:00")
        assert zone in {"America/Chicago", "America/Denver", "America/Los_Angeles"}
        assert re.search(rf"│ {zone} +│ US +│ 0[5-7]:30 +│ 08:00-21:00 +│ closed", done.stdout)
    assert re.search(r"│ Asia/Shanghai +│ CN +│ 21:30 +│ 08:00-22:00 +│ yes", done.stdout)

    outbox = tmp_path / "demo" / "letters" / "outbox"
    pdfs = sorted(outbox.glob("*.pdf"))
    manifests = sorted(outbox.glob("*.json"))
    assert pdfs
    assert [p.stem for p in pdfs] == [m.stem for m in manifests]
    assert json.loads(manifests[0].read_text())["pages"] >= 1
    assert (tmp_path / "demo" / "demo.log").stat().st_size > 0
