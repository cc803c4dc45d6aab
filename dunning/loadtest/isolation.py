"""A load test's own broker vhost and ledger, made before the run and removed after it.

A load test publishes tens of thousands of fictional intents. On the operator's vhost, real
workers would consume (and send) some of them; in the operator's ledger they would show in
``dunning report variants`` and ``dunning receipts``. So by default a run gets:

* a RabbitMQ vhost of its own, ``dunning-loadtest-<run id>``, created through the management API
  (``PUT /api/vhosts/<name>``) when it answers, else with ``rabbitmqctl add_vhost`` when that is
  installed here, and deleted with everything in it after the run. When neither can make one,
  the run is refused unless the operator says the broker may be shared (``--shared-broker``);
* a ledger of its own: a SQLite file in the run folder, or, given a PostgreSQL URL, a throw-away
  schema in that database (``dunning_loadtest_<run id>``), dropped after the run. Writing into a
  database as it is needs ``--shared-database``.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from sqlalchemy import create_engine, make_url, text

from dunning.errors import ConfigError

__all__ = ["Isolation", "isolate", "throwaway_schema", "throwaway_vhost"]

log = structlog.get_logger(__name__)
Cleanup = Callable[[], None]


@dataclass
class Isolation:
    """The URLs a run uses, what it made, and how to remove what it made."""

    broker_url: str
    database_url: str
    made: list[str] = field(default_factory=list)
    cleanups: list[Cleanup] = field(default_factory=list)

    def close(self) -> None:
        """Remove what was made, last first; a failure is logged and the rest still removed."""
        while self.cleanups:
            cleanup = self.cleanups.pop()
            try:
                cleanup()
            except Exception as exc:  # noqa: BLE001  every other cleanup must still run
                log.warning("loadtest.cleanup_failed", error=f"{type(exc).__name__}: {exc}")


def _with_vhost(url: str, vhost: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(vhost, safe="")))


def _credentials(url: str) -> tuple[str, str]:
    parts = urllib.parse.urlsplit(url)
    user = urllib.parse.unquote(parts.username or "guest")
    return user, urllib.parse.unquote(parts.password or "guest")


def _management_call(
    api: str, credentials: tuple[str, str], method: str, path: str, body: object = None
) -> None:
    request = urllib.request.Request(  # noqa: S310  http(s) URL of the broker's host
        f"{api.rstrip('/')}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    token = base64.b64encode(":".join(credentials).encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        response.read()


def _by_management(api: str, broker_url: str, vhost: str) -> Cleanup:
    credentials = _credentials(broker_url)
    name = urllib.parse.quote(vhost, safe="")
    user = urllib.parse.quote(credentials[0], safe="")
    _management_call(api, credentials, "PUT", f"/api/vhosts/{name}")

    def delete() -> None:
        _management_call(api, credentials, "DELETE", f"/api/vhosts/{name}")

    try:
        everything = {"configure": ".*", "write": ".*", "read": ".*"}
        _management_call(api, credentials, "PUT", f"/api/permissions/{name}/{user}", everything)
    except BaseException:
        delete()
        raise
    return delete


def _ctl(ctl: str, *args: str) -> None:
    done = subprocess.run(  # noqa: S603  the rabbitmqctl found on PATH, fixed arguments
        [ctl, *args], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ConfigError(f"rabbitmqctl {args[0]} failed: {detail[-1] if detail else '?'}")


def _by_rabbitmqctl(ctl: str, broker_url: str, vhost: str) -> Cleanup:
    user, _ = _credentials(broker_url)
    _ctl(ctl, "add_vhost", vhost)

    def delete() -> None:
        _ctl(ctl, "delete_vhost", vhost)

    try:
        _ctl(ctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
    except BaseException:
        delete()
        raise
    return delete


def throwaway_vhost(
    broker_url: str,
    vhost: str,
    *,
    management_url: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> tuple[str, Cleanup, str]:
    """Create ``vhost`` on ``broker_url``'s broker: (its URL, the deletion, how it was made).

    Tries the management API (``management_url``, default the broker host's port 15672), then
    ``rabbitmqctl``; raises ConfigError naming both failures when neither works.
    """
    from dunning.ops.queue_status import management_url as default_management_url

    api = management_url or default_management_url(broker_url)
    try:
        cleanup = _by_management(api, broker_url, vhost)
        return _with_vhost(broker_url, vhost), cleanup, f"vhost {vhost} (management API)"
    except (OSError, urllib.error.URLError) as exc:
        reason = getattr(exc, "reason", None) or exc
        management_failed = f"the management API at {api} did not create it ({reason})"
    rabbitmqctl = which("rabbitmqctl")
    if rabbitmqctl is None:
        ctl_failed = "rabbitmqctl is not installed here"
    else:
        try:
            cleanup = _by_rabbitmqctl(rabbitmqctl, broker_url, vhost)
            return _with_vhost(broker_url, vhost), cleanup, f"vhost {vhost} (rabbitmqctl)"
        except (ConfigError, OSError, subprocess.SubprocessError) as exc:
            ctl_failed = str(exc)
    raise ConfigError(
        f"cannot make a vhost of its own for the load test: {management_failed}; {ctl_failed}. "
        "Enable the management plugin or run where rabbitmqctl works, or pass --shared-broker "
        "to run on the broker URL's vhost alongside whatever consumes there"
    )


def _execute_once(database_url: str, statement: str) -> None:
    """Run one statement on a short-lived engine (the run's own engines use the schema)."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        engine.dispose()


def throwaway_schema(database_url: str, schema: str) -> tuple[str, Cleanup]:
    """Create ``schema`` in a PostgreSQL database: (a URL whose tables live there, the drop)."""
    _execute_once(database_url, f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        _execute_once(database_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    separator = "&" if "?" in database_url else "?"
    return f"{database_url}{separator}options=-csearch_path%3D{schema}", drop


def _sqlite_file(path: Path) -> tuple[str, Cleanup]:
    def remove() -> None:
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)

    return f"sqlite:///{path}", remove


def isolate(
    *,
    broker_url: str,
    database_url: str | None,
    run_id: str,
    run_dir: Path,
    shared_broker: bool = False,
    shared_database: bool = False,
    management_url: str | None = None,
    which: Callable[[str], str | None] = shutil.which,
) -> Isolation:
    """Make the run's vhost and ledger (see the module docstring); the caller closes it."""
    isolation = Isolation(broker_url=broker_url, database_url="")
    try:
        if not shared_broker:
            url, cleanup, made = throwaway_vhost(
                broker_url,
                f"dunning-loadtest-{run_id}",
                management_url=management_url,
                which=which,
            )
            isolation.broker_url = url
            isolation.cleanups.append(cleanup)
            isolation.made.append(made)
        if database_url is None:
            url, cleanup = _sqlite_file(run_dir / "ledger.db")
            isolation.made.append(f"ledger {run_dir / 'ledger.db'}")
        elif shared_database:
            url, cleanup = database_url, lambda: None
        elif make_url(database_url).get_backend_name() == "postgresql":
            schema = f"dunning_loadtest_{run_id}"
            url, cleanup = throwaway_schema(database_url, schema)
            isolation.made.append(f"schema {schema}")
        else:
            raise ConfigError(
                f"--database {make_url(database_url).render_as_string(hide_password=True)}: "
                "a load test makes a throw-away schema in a PostgreSQL database, or uses a SQLite "
                "file of its own when --database is not given; --shared-database writes into "
                "this database as it is"
            )
        isolation.database_url = url
        isolation.cleanups.append(cleanup)
    except BaseException:
        isolation.close()
        raise
    return isolation
