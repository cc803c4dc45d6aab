"""`dunning demo --console`: after the demo, the console serves its ledger and broker, prints
its address and a password, and stops on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_console_serves_the_demo_until_interrupted(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env["DUNNING_DATA_DIR"] = str(tmp_path)
    env["COLUMNS"] = "200"
    port = _free_port()
    argv = [
        "demo",
        "--accounts",
        "12",
        "--at",
        "2026-11-28T13:30:00+00:00",
        "--console",
        "--console-port",
        str(port),
    ]
    demo = subprocess.Popen(
        [sys.executable, "-m", "dunning", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert demo.stdout is not None
        announced = ""
        for line in demo.stdout:  # the summary, then the console's line
            announced = line
            if line.startswith("Console:"):
                break
        found = re.match(
            r"Console: (http://127\.0\.0\.1:\d+/) +user demo, password (\S+)", announced
        )
        assert found, announced
        address, password = found.groups()
        with httpx.Client(base_url=address) as client:
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
            assert token is not None
            signed = client.post(
                "/login", data={"csrf_token": token.group(1), "name": "demo", "password": password}
            )
            assert signed.status_code == 303
            dead = client.get("/dead-letters").text
        assert re.search(r'id="dead-total">1<', dead)  # the demo's invalid number
        assert "invalid" in dead
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        assert demo.wait(timeout=60) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
