"""`dunning demo --book config/accounts.visits.csv --collectors config/collectors.sample.csv`:
the sample visit book through the visit worker, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dunning.ledger import Ledger

ROOT = Path(__file__).parents[2]


def test_the_visit_book_yields_staffed_tasks_and_says_why_the_others_got_none(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env["DUNNING_DATA_DIR"] = str(tmp_path)
    env["COLUMNS"] = "250"  # one table row per line
    argv = ["demo", "--book", "config/accounts.visits.csv",
            "--collectors", "config/collectors.sample.csv",
            "--at", "2026-11-28T13:30:00+00:00"]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "dunning", *argv],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Field visit tasks" in done.stdout
    assert "1 eligible of 2 collectors, 2 needed (credential expired 1" in done.stdout
    for reason in ("cease", "dispute", "litigation", "no_territory"):
        assert f"│ {reason} " in done.stdout

    ledger = Ledger.open(f"sqlite:///{tmp_path / 'demo' / 'dunning.db'}")
    try:
        tasks = {t.account_id: t for t in ledger.visit_tasks()}
    finally:
        ledger.close()
    assert set(tasks) == {"CN-300001", "CN-300002", "US-400001"}
    # Only the two collectors whose credential and training are valid: C-103 and C-104 lapsed.
    assert {tasks[a].team for a in ("CN-300001", "CN-300002")} == {("C-101", "C-102")}
    assert (tasks["US-400001"].state, tasks["US-400001"].team) == ("waiting", ())
