"""The processes a load test runs: the Twilio stand-in and ``dunning worker`` subprocesses.

Each child gets its own log file in the run folder; stopping sends SIGTERM (workers drain and
exit 0) and waits, killing only after the grace period.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from dunning.errors import ConfigError

__all__ = [
    "ChildProcess",
    "child_env",
    "fetch_creates",
    "require_loopback",
    "script_standin",
    "start_standin",
]

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def require_loopback(url: str, what: str) -> None:
    """Refuse a URL whose host is not this machine: a load test never leaves loopback."""
    if url.startswith(("memory:", "sqlite:")):
        return
    host = urlsplit(url).hostname
    if host not in _LOOPBACK:
        raise ConfigError(f"{what} must be on loopback (127.0.0.1/localhost), got host {host!r}")


class ChildProcess:
    """One subprocess with its output in ``log_path``."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603  our own interpreter and fixed arguments
            argv, env=dict(env), stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace_s: float = 30.0) -> int:
        """SIGTERM, wait up to ``grace_s``, then SIGKILL; returns the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()
        return int(self.proc.returncode)

    def tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def start_standin(
    env: Mapping[str, str], run_dir: Path, timeout_s: float = 30.0
) -> tuple[ChildProcess, str]:
    """Start ``python -m dunning.sandbox`` on free ports; returns it and its Twilio base URL."""
    child = ChildProcess(
        "sandbox",
        [sys.executable, "-m", "dunning.sandbox", "--twilio-port", "0", "--smtp-port", "0"],
        env,
        run_dir / "sandbox.log",
    )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for line in child.log_path.read_text(encoding="utf-8", errors="replace").splitlines():
            if "DUNNING_TWILIO_API_BASE=" in line:
                return child, line.split("=", 1)[1].strip()
        if not child.alive():
            break
        time.sleep(0.05)  # polling the child's output for its address
    child.stop(grace_s=5)
    raise ConfigError(f"the Twilio stand-in did not start:\n{child.tail()}")


def _http(url: str, data: dict[str, Any] | None = None, timeout_s: float = 60.0) -> Any:
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(  # noqa: S310  loopback URL checked by require_loopback
        url, data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
        return json.loads(response.read())


def script_standin(base_url: str, behaviour: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a behaviour script (rate_429, rate_500, response_delay_ms, ...) to the stand-in."""
    require_loopback(base_url, "the Twilio stand-in")
    result: dict[str, Any] = _http(f"{base_url}/_sandbox/script", dict(behaviour))
    return result


def fetch_creates(base_url: str) -> Counter[str]:
    """Accepted creates per intent id from the stand-in's record (above 1 is a duplicate)."""
    records = _http(f"{base_url}/_sandbox/requests")
    return Counter(r["intent_id"] for r in records if r.get("intent_id"))


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without DUNNING_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env.update(extra)
    return env
