"""Reaching the machine's real services: skip locally when one is missing, fail when CI=true."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

RABBITMQ_URL = os.environ.get("DUNNING_TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
POSTGRES_URL = os.environ.get(
    "DUNNING_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("DUNNING_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

_PORTS = {"rabbitmq": 5672, "postgres": 5432, "redis": 6379}


def unavailable(message: str) -> NoReturn:
    """Skip the test for a missing tool or service locally; fail it when CI=true."""
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def require(service: str) -> None:
    """Skip the test when ``service`` is down, or fail it under CI where it must be up."""
    try:
        with socket.create_connection(("127.0.0.1", _PORTS[service]), timeout=2):
            return
    except OSError as exc:
        unavailable(f"{service} is not reachable on 127.0.0.1:{_PORTS[service]}: {exc}")


# Vhosts made by rabbitmq_vhost_url, deleted when the test module ends (tests/conftest.py).
# RabbitMQ 3.10 gives every vhost two message stores with open files inside a budget of about
# 95 file handles (a 1,024 descriptor limit, most kept for sockets): with a couple of dozen
# vhosts left behind it stops answering new connections.
_CREATED_VHOSTS: set[str] = set()


def delete_created_vhosts() -> None:
    """Delete every vhost :func:`rabbitmq_vhost_url` made since the last call."""
    ctl = shutil.which("rabbitmqctl")
    while _CREATED_VHOSTS:
        vhost = _CREATED_VHOSTS.pop()
        if ctl is not None:
            subprocess.run(
                [ctl, "delete_vhost", vhost], capture_output=True, timeout=120, check=False
            )


def rabbitmq_vhost_url(vhost: str) -> str:
    """A URL on a vhost of its own when rabbitmqctl can make one (other tests' queues stay
    untouched; the vhost is deleted when the test module ends); otherwise the configured vhost,
    whose dunning.* objects callers then delete."""
    require("rabbitmq")
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        return RABBITMQ_URL
    user = urlsplit(RABBITMQ_URL).username or "guest"
    for args in (["add_vhost", vhost], ["set_permissions", "-p", vhost, user, ".*", ".*", ".*"]):
        done = subprocess.run([ctl, *args], capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0 and "already exists" not in done.stderr + done.stdout:
            return RABBITMQ_URL
        _CREATED_VHOSTS.add(vhost)
    parts = urlsplit(RABBITMQ_URL)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def reset_rabbitmq_topology(url: str) -> None:
    """Delete every dunning.* queue and exchange on ``url``'s vhost (a clean slate per test)."""
    from dunning.broker.rabbitmq_sync import RabbitPublisher
    from dunning.broker.topology import DELAY_STEPS_S, build_topology, delay_exchange

    everything = build_topology(delay_steps_s=DELAY_STEPS_S)
    admin = RabbitPublisher(url)
    try:
        for queue in everything.queues:
            admin.delete_queue(queue.name)
        for exchange in everything.exchanges:
            admin.delete_exchange(exchange.name)
        admin.delete_exchange(delay_exchange(1))
    finally:
        admin.close()


@contextmanager
def postgres_schema(prefix: str = "dunning_test") -> Iterator[str]:
    """A PostgreSQL URL whose connections live in a throw-away schema, dropped afterwards."""
    from sqlalchemy import create_engine, text

    require("postgres")
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
