"""Broker URL lists: one ``DUNNING_BROKER_URL`` may name every node of a RabbitMQ cluster.

The value is one URL, or several separated by commas
(``amqp://u:p@mq1:5672/prod,amqp://u:p@mq2:5672/prod``; kombu's ``;`` is taken too). A list is
split only at a separator followed by the next URL's scheme (``amqp://`` ...), so a comma inside
a password neither splits the list nor escapes masking.

Workers (pika) and publishers and admin tools (kombu) go through the list with one
:class:`BrokerRotation` each: the first connection tries the URLs from the first on; after a
connection to one of them, the next (re)connect starts at the URL after it and wraps around. So
a client that lost its node moves on to the next node at once instead of knocking on the dead
one first, and a URL that refuses is passed over without a pause (the worker's backoff starts
only once every URL has failed).
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

from dunning.errors import ConfigError
from dunning.urls import BETWEEN_URLS, mask_url_list

__all__ = ["URL_SETTING", "BrokerRotation", "broker_urls", "masked_url", "split_broker_urls"]

URL_SETTING = "DUNNING_BROKER_URL (or --broker)"
_SCHEMES = {"memory", "amqp", "amqps"}


def split_broker_urls(text: str) -> list[str]:
    """The entries of a broker URL list as written (stripped), empty ones included."""
    return [part.strip() for part in BETWEEN_URLS.split(text)]


def broker_urls(text: str) -> tuple[str, ...]:
    """The URLs of a broker setting, in order; ConfigError naming the entry that is wrong."""
    parts = split_broker_urls(text)
    count = len(parts)
    for number, url in enumerate(parts, start=1):
        where = f"{URL_SETTING}: URL {number} of {count}" if count > 1 else URL_SETTING
        if not url:
            raise ConfigError(f"{where} is empty (separate URLs with single commas)")
        if url.endswith((",", ";")):
            raise ConfigError(
                f"{where} ({masked_url(url)}) is followed by an empty entry "
                "(separate URLs with single commas)"
            )
        if ";" in url:
            # kombu would split the URL there: a ';' in a password must be percent-encoded.
            raise ConfigError(f"{where} ({masked_url(url)}) contains ';': write it as %3B")
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in _SCHEMES:
            raise ConfigError(
                f"{where} must start with memory://, amqp:// or amqps://, not {masked_url(url)!r}"
            )
        pieces = urlsplit(url)
        if "," in pieces.netloc.rsplit("@", 1)[-1] + pieces.path:
            raise ConfigError(
                f"{where} ({masked_url(url)}) has a ',' after its host: each URL of a list "
                "starts with its own amqp:// (a ',' in a vhost is written %2C)"
            )
        if scheme == "memory" and count > 1:
            raise ConfigError(
                f"{where} is memory://, which is one in-process broker and takes no other URLs"
            )
    return tuple(parts)


def masked_url(url: str) -> str:
    """``url`` (or each URL of a list) with its password replaced by ``***``: safe to log."""
    return mask_url_list(url)


class BrokerRotation:
    """The order in which one client tries its broker URLs.

    :meth:`order` gives every URL once, starting at the first URL until a connection succeeds
    and then at the URL after the one last connected to; :meth:`connected` records a success.
    A round in which every URL failed leaves the starting point where it was.
    """

    def __init__(self, urls: tuple[str, ...]) -> None:
        if not urls:
            raise ConfigError(f"{URL_SETTING} names no broker")
        self.urls = urls
        self._start = 0

    def order(self) -> Iterator[tuple[int, str]]:
        """(index, URL) pairs to try, in turn, for one (re)connect."""
        count = len(self.urls)
        for offset in range(count):
            index = (self._start + offset) % count
            yield index, self.urls[index]

    def connected(self, index: int) -> None:
        """A connection to URL ``index`` opened: the next (re)connect starts after it."""
        self._start = (index + 1) % len(self.urls)
