"""Why a connection to RabbitMQ could not open, in one sentence an operator can act on.

pika reports a failed connection as a nest of workflow exceptions around the real cause (a
refused socket, a login the broker closed, a vhost it denied). :func:`connect_failure` finds that
cause and names the broker (password masked) and the likely fix. Credentials or a vhost the
broker refuses will not fix themselves, so those become :class:`BrokerAccessRefusedError`, which
the worker does not retry; everything else stays a retryable :class:`BrokerConnectionError`.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pika.exceptions
from pika.adapters.utils.connection_workflow import AMQPConnectorStackTimeout

from dunning.broker.urls import URL_SETTING as _URL_SETTING
from dunning.broker.urls import masked_url
from dunning.errors import BrokerAccessRefusedError, BrokerConnectionError, BrokerError

__all__ = ["connect_failure", "masked_url"]


def connect_failure(error: BaseException | str, url: str) -> BrokerError:
    """The dunning error for a connection to ``url`` that failed with pika's ``error``."""
    where = masked_url(url)
    causes = list(_causes(error)) if isinstance(error, BaseException) else []

    def found(kind: type[BaseException] | tuple[type[BaseException], ...]) -> bool:
        return any(isinstance(cause, kind) for cause in causes)

    if found(pika.exceptions.ProbableAuthenticationError):
        return BrokerAccessRefusedError(
            f"authentication refused by {where}: check {_URL_SETTING} user and password"
        )
    if found(pika.exceptions.ProbableAccessDeniedError):
        return BrokerAccessRefusedError(
            f"access to the virtual host refused by {where}: check that the vhost in "
            f"{_URL_SETTING} exists and that the user has permissions on it"
        )
    if found(ConnectionRefusedError):
        return BrokerConnectionError(
            f"connection refused by {where}: is RabbitMQ running on that port?"
        )
    if found(socket.gaierror):
        return BrokerConnectionError(
            f"cannot resolve the host of {where}: check the host in {_URL_SETTING}"
        )
    if found(pika.exceptions.IncompatibleProtocolError):
        return BrokerConnectionError(
            f"{where} did not answer as an AMQP 0-9-1 broker: is that RabbitMQ's AMQP port "
            f"(5672, or 5671 for amqps), not another service?"
        )
    if found((TimeoutError, AMQPConnectorStackTimeout)):
        return BrokerConnectionError(f"no answer from {where}: is the host reachable?")
    return BrokerConnectionError(f"cannot connect to {where}: {error!s}")


def _causes(error: BaseException) -> Iterator[BaseException]:
    """``error`` and every exception nested in it (pika's workflow wrappers, ``args``)."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        nested: list[object] = [
            *getattr(current, "exceptions", ()),
            getattr(current, "exception", None),
            *current.args,
            current.__cause__,
        ]
        stack.extend(n for n in nested if isinstance(n, BaseException))
