"""A TCP relay between a component and RabbitMQ that a test can cut, restore or hold.

``cut`` drops every connection and refuses new ones (a broker that went away); ``hold`` stops
forwarding what the component sends, so its publishes wait for their confirms (a broker that
stalls), until ``release`` forwards what was held and resumes. The relay runs on the test's
event loop: components that use it run in threads or other processes.
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

from tests.integration.drill_support import free_port


class Relay:
    """Forwards a loopback port of its own to the broker of ``broker_url``."""

    def __init__(self, broker_url: str) -> None:
        target = urlsplit(broker_url)
        self.target = (target.hostname or "127.0.0.1", target.port or 5672)
        self.port = free_port()
        parts = urlsplit(broker_url)
        credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        #: ``broker_url`` through the relay.
        self.url = urlunsplit(parts._replace(netloc=f"{credentials}127.0.0.1:{self.port}"))
        self._server: asyncio.Server | None = None
        self._streams: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()

    async def restore(self) -> None:
        """Listen (again) and forward."""
        self._flowing.set()
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Refuse new connections and drop every open one, as a broker that went away."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._streams):
            writer.close()
        self._streams.clear()

    def hold(self) -> None:
        """Keep what components send from here on, unforwarded, until :meth:`release`."""
        self._flowing.clear()

    def release(self) -> None:
        self._flowing.set()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self._streams |= {writer, upstream_writer}
        await asyncio.gather(
            self._pipe(reader, upstream_writer, held=True),
            self._pipe(upstream_reader, writer, held=False),
            return_exceptions=True,
        )

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, *, held: bool
    ) -> None:
        try:
            while data := await source.read(65536):
                if held:
                    await self._flowing.wait()
                sink.write(data)
                await sink.drain()
        finally:
            sink.close()
