"""`dunning demo` as a user runs it: one command, the whole system, a summary at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dunning.intents import Channel
from dunning.ledger import Ledger

ROOT = Path(__file__).parents[2]


def test_demo_runs_every_channel_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env["DUNNING_DATA_DIR"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "dunning", "demo", "--accounts", "40", "--seed", "7"],
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

    outbox = tmp_path / "demo" / "letters" / "outbox"
    pdfs = sorted(outbox.glob("*.pdf"))
    manifests = sorted(outbox.glob("*.json"))
    assert pdfs
    assert [p.stem for p in pdfs] == [m.stem for m in manifests]
    assert json.loads(manifests[0].read_text())["pages"] >= 1
    assert (tmp_path / "demo" / "demo.log").stat().st_size > 0
