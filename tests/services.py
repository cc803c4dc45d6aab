"""Reaching the machine's real services: skip locally when one is missing, fail when CI=true."""

from __future__ import annotations

import os
import socket

import pytest

RABBITMQ_URL = os.environ.get("DUNNING_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
POSTGRES_URL = os.environ.get(
    "DUNNING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("DUNNING_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

_PORTS = {"rabbitmq": 5672, "postgres": 5432, "redis": 6379}


def require(service: str) -> None:
    """Skip the test when ``service`` is down, or fail it under CI where it must be up."""
    try:
        with socket.create_connection(("127.0.0.1", _PORTS[service]), timeout=2):
            return
    except OSError as exc:
        message = f"{service} is not reachable on 127.0.0.1:{_PORTS[service]}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
