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
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from dunning.errors import ConfigError

__all__ = [
    "SANDBOX_SCRIPT",
    "ChildProcess",
    "NoSandboxEndpointError",
    "child_env",
    "fetch_creates",
    "fetch_creates_if_recorded",
    "require_loopback",
    "script_standin",
    "script_standin_if_there",
    "start_standin",
]

_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
SANDBOX_SCRIPT = "/_sandbox/script"
SANDBOX_REQUESTS = "/_sandbox/requests"
# What a Twilio-compatible server without dunning's sandbox endpoints answers for them.
_NOT_THERE = {404, 405, 501}


class NoSandboxEndpointError(ConfigError):
    """The Twilio endpoint is not dunning's stand-in: it lacks a ``/_sandbox/*`` endpoint."""

    def __init__(self, url: str, status: int) -> None:
        super().__init__(f"{url} answered HTTP {status}: not dunning's Twilio stand-in")
        self.url = url
        self.status = status


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


def _sandbox_http(url: str, data: dict[str, Any] | None = None, timeout_s: float = 60.0) -> Any:
    """GET or POST (with ``data``) one of the stand-in's own endpoints; raises
    NoSandboxEndpointError when the server has no such endpoint."""
    body = None if data is None else json.dumps(data).encode()
    request = urllib.request.Request(  # noqa: S310  loopback URL checked by require_loopback
        url, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code in _NOT_THERE:
            raise NoSandboxEndpointError(url, exc.code) from exc
        raise


def script_standin(base_url: str, behaviour: Mapping[str, Any]) -> dict[str, Any]:
    """Apply a behaviour script (rate_429, rate_500, response_delay_ms, ...) to the stand-in.

    Raises NoSandboxEndpointError when ``base_url`` is a Twilio-compatible server without dunning's
    scripting endpoint."""
    require_loopback(base_url, "the Twilio stand-in")
    result: dict[str, Any] = _sandbox_http(f"{base_url}{SANDBOX_SCRIPT}", dict(behaviour))
    return result


def fetch_creates(base_url: str) -> Counter[str]:
    """Accepted creates per intent id from the stand-in's record (above 1 is a duplicate).

    Raises NoSandboxEndpointError when the server keeps no such record."""
    records = _sandbox_http(f"{base_url}{SANDBOX_REQUESTS}")
    return Counter(r["intent_id"] for r in records if r.get("intent_id"))


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without DUNNING_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DUNNING_")}
    env.update(extra)
    return env


def script_standin_if_there(base_url: str, behaviour: Mapping[str, Any]) -> str | None:
    """Script the stand-in; against another Twilio-compatible endpoint skip that and return a
    note saying so. Raises ConfigError when ``behaviour`` asks for scripted faults or latency
    (truthy values besides ``drop_callback_rate``) that only the stand-in can give."""
    try:
        script_standin(base_url, behaviour)
    except NoSandboxEndpointError as exc:
        asked = sorted(k for k, v in behaviour.items() if v and k != "drop_callback_rate")
        if asked:
            raise ConfigError(
                f"{exc}, so it cannot be scripted with {', '.join(asked)}: leave those options "
                "out to load a Twilio-compatible endpoint as it is"
            ) from exc
        return (
            f"{base_url} has no {SANDBOX_SCRIPT} (HTTP {exc.status}): sandbox scripting "
            "skipped; faults, latency and status callbacks are the endpoint's own"
        )
    return None


def fetch_creates_if_recorded(base_url: str) -> tuple[Counter[str] | None, str | None]:
    """:func:`fetch_creates`, or None and a note when the endpoint keeps no record of creates."""
    try:
        return fetch_creates(base_url), None
    except NoSandboxEndpointError as exc:
        return None, (
            f"{exc.url} answered HTTP {exc.status}: duplicates not counted (only dunning's "
            "stand-in records the creates it accepted)"
        )
