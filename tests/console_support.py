"""The console under test: served by uvicorn in a thread, a channel worker in another, and
Debian's Chromium driven by selenium.

The browser is the system's (``chromium`` and ``chromium-driver``, installed by
``make system-deps``); nothing is downloaded. Without it the browser tests skip, and fail
under CI=true (:func:`tests.services.unavailable`).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from dunning.channels.base import CallbackChannel, SendResult
from dunning.clock import SystemClock
from dunning.intents import Channel, ContactIntent
from dunning.ledger import Ledger
from dunning.settings import Settings
from dunning.workers.assembly import WorkerParts, build_worker
from dunning.workers.middleware import OutcomeCounter
from dunning.workers.runtime import Worker
from tests.services import unavailable

__all__ = ["ConsoleServer", "WorkerThread", "chromium", "screenshot"]

#: Flags that let Chromium run headless in a container without a GPU, sandbox or network
#: side traffic.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
)
#: Folder to save page screenshots in (scripts/console-screenshots.sh sets docs/console).
SCREENSHOTS = os.environ.get("DUNNING_CONSOLE_SCREENSHOTS")


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """A headless Chromium with a fresh profile in ``profile``; quit on exit."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        unavailable("chromium and chromium-driver are not installed (make system-deps)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        unavailable("selenium is not installed (pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Any, name: str) -> None:
    """Save the page as ``<name>.png`` when screenshots are asked for."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(SCREENSHOTS) / f"{name}.png"))


class ConsoleServer:
    """An ASGI app served on a free loopback port by uvicorn in a daemon thread."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ConsoleServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:  # uvicorn offers no event to wait on
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the console did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


Send = Callable[[ContactIntent, int], Awaitable[SendResult]]


class WorkerThread:
    """One SMS worker on the real broker, in an event loop of its own thread."""

    def __init__(self, settings: Settings, ledger: Ledger, send: Send) -> None:
        self.settings = settings
        self.ledger = ledger
        self.send = send
        self.counter = OutcomeCounter()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.worker: Worker | None = None
        self._ready = threading.Event()
        self._result: Future[int] = Future()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        async def main() -> int:
            self.loop = asyncio.get_running_loop()
            parts = WorkerParts(
                channel=Channel.SMS,
                adapter=CallbackChannel(Channel.SMS, self.send),
                ledger=self.ledger,
                clock=SystemClock(),
                middleware=(self.counter,),
            )
            self.worker = build_worker(self.settings, parts)
            self._ready.set()
            return await self.worker.run()

        try:
            self._result.set_result(asyncio.run(main()))
        except BaseException as exc:  # noqa: BLE001  handed to the test's thread
            self._ready.set()
            self._result.set_exception(exc)

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        self._ready.wait(30)
        return self

    def wait_for(self, predicate: Callable[[dict[str, int]], bool], timeout_s: float = 30) -> None:
        """Block until ``predicate(outcome counts)`` holds (TimeoutError after ``timeout_s``)."""
        assert self.loop is not None
        waiting = asyncio.run_coroutine_threadsafe(
            self.counter.wait_until(lambda: predicate(dict(self.counter.counts)), timeout_s),
            self.loop,
        )
        waiting.result(timeout_s + 5)

    def __exit__(self, *_: object) -> None:
        if self.loop is not None and self.worker is not None:
            self.loop.call_soon_threadsafe(self.worker.stop)
        self.thread.join(timeout=60)
        assert self._result.result(timeout=0) == 0  # a worker that crashed fails the test
