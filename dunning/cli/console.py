"""`dunning console`: serve the operator console; `dunning console user add|disable|list`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from dunning.cli.common import BROKER_HELP, fail, load_settings

__all__ = ["app"]

app = typer.Typer(invoke_without_command=True)
users = typer.Typer(help="Console users: add, disable, list.", no_args_is_help=True)
app.add_typer(users, name="user")


@app.callback()
def console_command(
    ctx: typer.Context,
    host: str = typer.Option(
        "127.0.0.1",
        help="Address to bind. Beyond loopback the console needs --tls-cert/--tls-key, "
        "--behind-tls-proxy or --insecure-http.",
    ),
    port: int = typer.Option(8090, help="Port to bind."),
    tls_cert: Path | None = typer.Option(None, help="TLS certificate (PEM) to serve HTTPS."),
    tls_key: Path | None = typer.Option(None, help="TLS private key (PEM), with --tls-cert."),
    behind_tls_proxy: bool = typer.Option(
        False,
        "--behind-tls-proxy",
        help="A proxy in front terminates TLS: bind any address, mark cookies Secure and trust "
        "its X-Forwarded-* headers.",
    ),
    insecure_http: bool = typer.Option(
        False,
        "--insecure-http",
        help="Serve plain HTTP on a non-loopback address knowingly (a container whose port "
        "is published on the host's loopback only); cookies are then not marked Secure.",
    ),
    secret_file: Path | None = typer.Option(
        None,
        envvar="DUNNING_CONSOLE_SECRET_FILE",
        help="File holding the key that signs session cookies (default: a random key per "
        "start, so a restart signs everyone out).",
    ),
    dlq_threshold: int = typer.Option(
        0, min=0, help="Dead letters per queue above which the overview flags the queue."
    ),
    database_url: str | None = typer.Option(
        None, help="Ledger URL (default $DUNNING_DATABASE_URL)."
    ),
    broker: str | None = typer.Option(None, help=BROKER_HELP),
) -> None:
    """The operator console: queues, dead letters, people's timelines, today's contacts.

    Sign in with a user made by `dunning console user add`. Roles: viewer (masked personal
    data, no actions), operator (replay and purge dead letters), admin (users too),
    collector (field-visit pages only). See docs/console.md.

    Examples:

      dunning console user add alice --role operator      # asks for the password

      dunning console --port 8090                          # http://127.0.0.1:8090/

      dunning console --host 0.0.0.0 --tls-cert cert.pem --tls-key key.pem
    """
    if ctx.invoked_subcommand is not None:
        return
    from dunning.console.server import ConsoleOptions, check_options, serve

    settings = load_settings(database_url=database_url, broker_url=broker)
    secret = None
    if secret_file is not None:
        try:
            secret = secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise fail(f"cannot read the session key {secret_file}: {exc.strerror}") from None
        if len(secret) < 32:
            raise fail(f"the session key in {secret_file} is shorter than 32 characters")
    options = ConsoleOptions(
        host=host,
        port=port,
        tls_cert=tls_cert,
        tls_key=tls_key,
        behind_tls_proxy=behind_tls_proxy,
        insecure_http=insecure_http,
        dlq_threshold=dlq_threshold,
        secret=secret,
    )
    check_options(options)
    typer.echo(f"dunning console on {options.address}")
    serve(settings, options)


@users.command("add")
def add_user(
    name: str = typer.Argument(..., help="User name: a-z, 0-9, '.', '-', '_'."),
    role: str = typer.Option(..., "--role", help="viewer, operator, admin or collector."),
    collector: str | None = typer.Option(
        None,
        "--collector",
        help="With --role collector (and only then): the id of the collector this login is "
        "(`dunning collectors list`); it sees its team's visit tasks.",
    ),
    replace: bool = typer.Option(
        False, "--replace", help="Set a new role and password for an existing user."
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from the first line of stdin."
    ),
    database_url: str | None = typer.Option(
        None, help="Ledger URL (default $DUNNING_DATABASE_URL)."
    ),
) -> None:
    """Create a console user; the password is asked for (twice), or read with
    --password-stdin, and stored as an argon2 hash.

    Examples:

      dunning console user add alice --role operator

      printf '%s\\n' "$PASSWORD" | dunning console user add ci --role viewer --password-stdin

      dunning console user add wang --role collector --collector C-101
    """
    from dunning.console.pages.admin import check_name
    from dunning.console.roles import check_role
    from dunning.console.security import hash_password
    from dunning.ledger.console_store import ConsoleStore

    settings = load_settings(database_url=database_url)
    try:
        name = check_name(name)
        role = check_role(role)
    except ValueError as exc:
        raise fail(str(exc)) from None
    _check_collector(settings.database_url, role, collector)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        password_hash = hash_password(password)
    except ValueError as exc:
        raise fail(str(exc)) from None
    store = ConsoleStore.open(settings.database_url)
    try:
        created = store.add_user(
            name,
            role,
            password_hash,
            now=settings.clock().now(),
            replace=replace,
            collector_id=collector,
        )
    finally:
        store.close()
    linked = f", collector {collector}" if collector else ""
    typer.echo(f"{'added' if created else 'updated'} console user {name} ({role}{linked})")


def _check_collector(database_url: str, role: str, collector: str | None) -> None:
    from dunning.console.roles import check_collector_link
    from dunning.ledger import Ledger

    known = []
    if role == "collector" and collector:
        ledger = Ledger.open(database_url, migrate=False)
        try:
            known = ledger.collectors()
        finally:
            ledger.close()
    try:
        check_collector_link(role, collector, known)
    except ValueError as exc:
        raise fail(str(exc)) from None
