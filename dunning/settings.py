"""Typed settings, read once from a mapping (normally ``os.environ``) at the program's edge.

Every setting is a ``DUNNING_<NAME>`` variable; secrets may instead come from a file named by
``DUNNING_<NAME>_FILE`` (Docker and systemd credentials). The defaults run the embedded demo with
nothing installed but Python: memory broker, SQLite under ``var/``, the sandbox stand-ins.
Each field's ``metadata["help"]`` is the reference documentation (``docs/configuration.md``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from dunning.clock import Clock, ShiftedClock, SystemClock
from dunning.errors import ConfigError
from dunning.urls import mask_url, mask_url_list

__all__ = ["Settings"]

LogFormat = Literal["auto", "json", "console"]
_SECRETS = {"twilio_auth_token", "smtp_password", "webhook_secret", "unsubscribe_secret"}
#: Settings whose defaults are the sandbox's published values: anyone can sign with them.
_SANDBOX_DEFAULTED = ("twilio_auth_token", "webhook_secret", "unsubscribe_secret")


def _doc(text: str, *, secret: bool = False) -> dict[str, Any]:
    return {"help": text, "secret": secret}


@dataclass(frozen=True)
class Settings:
    broker_url: str = field(
        default="memory://",
        metadata=_doc(
            "memory:// for the in-process broker, or amqp[s]://user:pass@host:port/vhost; for a "
            "RabbitMQ cluster, one URL per node separated by commas "
            "(amqp://u:p@mq1:5672/prod,amqp://u:p@mq2:5672/prod): a client connects to the "
            "first URL that answers and, after losing that connection, tries the next ones in "
            "turn (docs/operations.md, multi-node deployment)"
        ),
    )
    database_url: str = field(
        default="sqlite:///var/dunning.db",
        metadata=_doc("SQLAlchemy URL of the ledger; postgresql+psycopg://... in production"),
    )
    redis_url: str | None = field(
        default=None,
        metadata=_doc("redis://host:6379/0 shares rate limits across worker processes"),
    )
    config_dir: Path = field(
        default=Path("config"),
        metadata=_doc("folder holding strategy.toml, compliance.toml, channels.toml, templates/"),
    )
    data_dir: Path = field(
        default=Path("var"), metadata=_doc("where the demo keeps its database and letters")
    )
    now: datetime | None = field(
        default=None,
        metadata=_doc("ISO instant the clock starts from (advances in real time); for drills"),
    )
    log_format: LogFormat = field(
        default="auto", metadata=_doc("json, console, or auto (console on a terminal)")
    )
    log_level: str = field(default="info", metadata=_doc("debug, info, warning or error"))
    prefetch: int = field(default=50, metadata=_doc("AMQP prefetch per worker consumer"))
    max_in_flight: int = field(
        default=20, metadata=_doc("sends in progress at once per worker process")
    )
    declare_topology: bool = field(
        default=True,
        metadata=_doc(
            "declare exchanges and queues at start-up; false for least-privilege users "
            "(run `dunning topology declare` once as the admin user instead)"
        ),
    )
    delivery_limit: int = field(
        default=5,
        metadata=_doc("x-delivery-limit of work queues: redeliveries before a poison message dies"),
    )
    retry_delays_s: tuple[int, ...] = field(
        default=(10, 60, 300, 1800, 7200),
        metadata=_doc("retry ladder in seconds, comma-separated"),
    )
    max_attempts: int = field(default=6, metadata=_doc("provider attempts before dead-lettering"))
    shutdown_grace_s: float = field(
        default=30.0, metadata=_doc("seconds a stopping worker waits for sends in flight")
    )
    reconcile_after_s: int = field(
        default=900,
        metadata=_doc("an intent stuck in sending this long without a receipt is reconciled"),
    )
    reconcile_every_s: float = field(
        default=60.0, metadata=_doc("seconds between a worker's reconcile sweeps; 0 disables")
    )
    unknown_after_s: int = field(
        default=72 * 3600,
        metadata=_doc("a sent intent with no final receipt this long becomes `unknown`"),
    )
    twilio_account_sid: str = field(
        default="AC00000000000000000000000000000000", metadata=_doc("Twilio account SID")
    )
    twilio_auth_token: str = field(
        default="sandbox-token",
        metadata=_doc(
            "Twilio auth token (API calls and webhook signatures); the default is the sandbox's "
            "public value",
            secret=True,
        ),
    )
    twilio_api_base: str | None = field(
        default=None,
        metadata=_doc("base URL replacing https://*.twilio.com (the sandbox stand-in)"),
    )
    twilio_timeout_s: float = field(default=10.0, metadata=_doc("HTTP timeout of Twilio calls"))
    smtp_host: str = field(default="127.0.0.1", metadata=_doc("SMTP server host"))
    smtp_port: int = field(default=1025, metadata=_doc("SMTP server port"))
    smtp_username: str | None = field(default=None, metadata=_doc("SMTP user"))
    smtp_password: str | None = field(default=None, metadata=_doc("SMTP password", secret=True))
    smtp_starttls: bool = field(default=False, metadata=_doc("upgrade with STARTTLS"))
    smtp_tls: bool = field(default=False, metadata=_doc("implicit TLS (port 465)"))
    smtp_timeout_s: float = field(default=10.0, metadata=_doc("SMTP timeout"))
    webhook_public_url: str = field(
        default="http://127.0.0.1:8080",
        metadata=_doc(
            "public base URL of `dunning webhook`, as Twilio sees it (signatures); the default "
            "serves the sandbox only"
        ),
    )
    webhook_secret: str = field(
        default="sandbox-webhook-secret",
        metadata=_doc(
            "HMAC key of email-provider and print-vendor event signatures; the default is the "
            "sandbox's public value",
            secret=True,
        ),
    )
    unsubscribe_secret: str = field(
        default="sandbox-unsubscribe-secret",
        metadata=_doc(
            "HMAC key of email unsubscribe tokens, apart from DUNNING_WEBHOOK_SECRET (the email "
            "worker and the webhook must share it); the default is the sandbox's public value",
            secret=True,
        ),
    )
    sandbox: bool = field(
        default=False,
        metadata=_doc(
            "true only beside the sandbox stand-ins (`dunning sandbox` prints it, the demo sets "
            "it): the webhook then runs on the public defaults above; otherwise it refuses to "
            "start until DUNNING_TWILIO_AUTH_TOKEN, DUNNING_WEBHOOK_SECRET, "
            "DUNNING_UNSUBSCRIBE_SECRET and DUNNING_WEBHOOK_PUBLIC_URL are set"
        ),
    )
    letter_outbox: Path = field(
        default=Path("var/letters/outbox"),
        metadata=_doc("print-vendor drop folder (one PDF + one JSON manifest per letter)"),
    )
    email_archive: Path | None = field(
        default=None,
        metadata=_doc(
            "folder keeping every email as sent, <intent_id>.eml (the evidence a legal handover "
            "bundles); unset: only each email's SHA-256 is kept, in the ledger"
        ),
    )
    metrics_port: int | None = field(
        default=None, metadata=_doc("port for /metrics, /healthz, /readyz of a worker")
    )
    accounts_source: str | None = field(
        default=None,
        metadata=_doc(
            "the book `dunning evaluate` reads when given none: a .csv, a .jsonl or a "
            "SQLAlchemy URL (with a password: DUNNING_ACCOUNTS_SOURCE_FILE)"
        ),
    )

    def clock(self) -> Clock:
        """The process clock: real time, or real time shifted to start at ``now``."""
        return SystemClock() if self.now is None else ShiftedClock(self.now)

    def webhook_problems(self) -> list[str]:
        """Why the webhook must not run on these settings outside the sandbox; empty when fit.

        A secret left empty or at its default is the sandbox's published value, with which
        anyone can forge a STOP, an email event or an unsubscribe; the default public URL
        makes every genuine Twilio signature fail.
        """
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        problems = [
            f"DUNNING_{name.upper()} is not set (the default is the sandbox's public value)"
            for name in _SANDBOX_DEFAULTED
            if getattr(self, name) in {"", defaults[name]}
        ]
        if self.webhook_public_url in {"", defaults["webhook_public_url"]}:
            problems.append(
                "DUNNING_WEBHOOK_PUBLIC_URL is not set (the URL Twilio calls, e.g. "
                "https://hooks.example.com: signatures are checked against it)"
            )
        if not problems and self.unsubscribe_secret == self.webhook_secret:
            problems.append("DUNNING_UNSUBSCRIBE_SECRET must differ from DUNNING_WEBHOOK_SECRET")
        return problems

    def masked(self) -> dict[str, str]:
        """Every setting as text, secrets and URL passwords (user part or query parameter,
        such as ``?password=``) replaced by ``***``."""
        out: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in _SECRETS and value:
                out[f.name] = "***"
            elif f.name == "broker_url":
                out[f.name] = mask_url_list(value)
            elif isinstance(value, str) and "://" in value:
                out[f.name] = mask_url(value)
            else:
                out[f.name] = _format(value)
        return out

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse ``DUNNING_*`` variables; raises ConfigError naming the variable that is wrong."""
        values: dict[str, Any] = {}
        known = {f"DUNNING_{f.name.upper()}" for f in dataclasses.fields(cls)}
        known |= {f"{k}_FILE" for k in known}
        unknown = sorted(k for k in env if k.startswith("DUNNING_") and k not in known)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        for f in dataclasses.fields(cls):
            var = f"DUNNING_{f.name.upper()}"
            raw = env.get(var)
            # Empty is unset (compose passes ${VAR:-} through as ""): then the file counts.
            if not raw and f"{var}_FILE" in env:
                path = Path(env[f"{var}_FILE"])
                try:
                    raw = path.read_text().strip()
                except OSError as exc:
                    raise ConfigError(f"{var}_FILE: cannot read {path}: {exc.strerror}") from exc
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = _parse(f.type, raw)
            except ValueError as exc:
                raise ConfigError(f"{var}={raw!r}: {exc}") from exc
        return cls(**values)


def _parse(kind: Any, raw: str) -> Any:
    text = str(kind)
    if "datetime" in text:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if value.tzinfo is None:
            raise ValueError("needs an offset or Z, like 2026-11-28T21:59:30+08:00")
        return value
    if "tuple" in text:
        return tuple(int(part) for part in raw.split(",") if part.strip())
    if "bool" in text:
        lowered = raw.lower()
        if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
            raise ValueError("expected true or false")
        return lowered in {"1", "true", "yes", "on"}
    if "float" in text:
        return float(raw)
    if "int" in text:
        return int(raw)
    if "Path" in text:
        return Path(raw)
    if "LogFormat" in text and raw not in {"auto", "json", "console"}:
        raise ValueError("expected auto, json or console")
    return raw


def _format(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
