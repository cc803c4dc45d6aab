"""`dunning config check`: validate the configuration files and reach every service.

Each check returns one :class:`CheckResult` (name, ok, one-line detail); a check never raises,
so one broken piece never hides the others. File checks call the loaders the workers and the
evaluator use, so a file that passes here loads there; the wiring checks then follow the names
between the files (templates, senders, notices: :mod:`dunning.ops.wiring`).
"""

from __future__ import annotations

import asyncio
import base64
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiosmtplib
import redis
import redis.exceptions
import sqlalchemy
import sqlalchemy.exc

from dunning.compliance.packs import PackSet
from dunning.errors import DunningError
from dunning.ops.wiring import (
    Audience,
    compliance_template_problems,
    find_audience,
    jurisdiction_problems,
    template_reference_problems,
)
from dunning.producers.strategy import Strategy
from dunning.settings import Settings

__all__ = [
    "CheckResult",
    "connectivity_checks",
    "file_checks",
    "run_checks",
    "wiring_checks",
]

_TWILIO_PUBLIC_API = "https://api.twilio.com"
# A message SID that cannot exist: fetching it proves reachability and credentials (404),
# without sending anything or reading real data.
_PROBE_SID = "SM" + "0" * 32


class CheckFailedError(Exception):
    """A failing check whose message already says precisely what is wrong."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


Check = Callable[[Settings], str]
"""Returns the detail of a passing check; raises (anything) with the reason of a failing one."""


def _guard(name: str, check: Check, settings: Settings) -> CheckResult:
    try:
        return CheckResult(name, True, check(settings))
    except (CheckFailedError, DunningError) as exc:
        return CheckResult(name, False, str(exc))
    except Exception as exc:  # noqa: BLE001  a check reports every failure, it never raises
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return CheckResult(name, False, f"{type(exc).__name__}: {first}".rstrip(": "))


# --- files ---------------------------------------------------------------------------------


def _compliance(settings: Settings) -> str:
    from dunning.compliance import load_packs

    path = settings.config_dir / "compliance.toml"
    packs = load_packs(path)
    return f"{path}: packs for {', '.join(packs.jurisdictions())}"


def _strategy(settings: Settings) -> str:
    from dunning.producers.strategy import load_strategy

    path = settings.config_dir / "strategy.toml"
    strategy = load_strategy(path)
    return f"{path}: strategy {strategy.name!r}, {len(strategy.variants)} variant(s)"


def _channels(settings: Settings) -> str:
    from dunning.channels_toml import load_twilio_config

    config = load_twilio_config(settings.config_dir)
    return f"{settings.config_dir / 'channels.toml'}: {len(config.institutions)} institution(s)"


def _email(settings: Settings) -> str:
    from dunning.channels.email_message import load_email_config

    load_email_config(settings)
    return f"{settings.config_dir / 'channels.toml'} [email]: valid"


def _law_firms_path(settings: Settings) -> Path:
    """The engagements file ``[letter] law_firms`` names (default ``law_firms.toml``)."""
    from dunning.channels_toml import CHANNELS_TOML, load_channels_toml

    channels = load_channels_toml(settings.config_dir / CHANNELS_TOML, missing_ok=True)
    return channels.letter().law_firms


def _law_firms(settings: Settings) -> str:
    from dunning.channels.letter.law_firms import LawFirms

    path = _law_firms_path(settings)
    firms = LawFirms.load(path)
    return f"{path}: engagements for {', '.join(sorted(firms.engagements)) or 'no jurisdiction'}"


def _templates(settings: Settings) -> str:
    from dunning.compliance.template_lint import institution_samples, lint_templates

    folder = settings.config_dir / "templates"
    if not folder.is_dir():
        raise CheckFailedError(f"no template folder at {folder}")
    results = lint_templates(folder, institution_samples(settings.config_dir / "channels.toml"))
    failed = [r for r in results if not r.ok]
    if failed:
        first = failed[0]
        raise CheckFailedError(
            f"{len(failed)} of {len(results)} template checks failed, first: {first.template} "
            f"{first.rule}: {first.detail} (details: dunning templates check --failures-only)"
        )
    return f"{folder}: {len({r.template for r in results})} messages, {len(results)} checks ok"


def _webhook_secrets(settings: Settings) -> str:
    """Outside the sandbox, every secret and the webhook's public URL must be set."""
    if settings.sandbox:
        return "DUNNING_SANDBOX=true: the sandbox's public secrets are accepted (local trials)"
    problems = settings.webhook_problems()
    if problems:
        raise CheckFailedError("; ".join(problems))
    return "Twilio token, webhook and unsubscribe secrets and public URL set"


FILE_CHECKS: tuple[tuple[str, Check], ...] = (
    ("compliance.toml", _compliance),
    ("strategy.toml", _strategy),
    ("channels.toml", _channels),
    ("email settings", _email),
    ("law_firms.toml", _law_firms),
    ("templates", _templates),
    ("webhook secrets", _webhook_secrets),
)


def file_checks(settings: Settings, *, book: str | None = None) -> list[CheckResult]:
    """Each file on its own, then the names between them (``dunning.ops.wiring``).

    A wiring check is not run while a file it reads fails to load: it says so, naming that file,
    instead of repeating the file's error.
    """
    results = [_guard(name, check, settings) for name, check in FILE_CHECKS]
    broken = [r.name for r in results if not r.ok and r.name in _WIRING_INPUTS]
    for name, check in wiring_checks(book):
        if broken:
            results.append(CheckResult(name, False, f"not checked: {', '.join(broken)} failed"))
        else:
            results.append(_guard(name, check, settings))
    return results


# --- wiring between the files ----------------------------------------------------------------


@dataclass(frozen=True)
class _Wiring:
    strategy: Strategy
    packs: PackSet
    audience: Audience
    templates: Path

    @classmethod
    def load(cls, settings: Settings, book: str | None) -> _Wiring:
        from dunning.channels.letter.law_firms import LawFirms
        from dunning.compliance import load_packs
        from dunning.producers.strategy import load_strategy

        packs = load_packs(settings.config_dir / "compliance.toml")
        firms = LawFirms.load(_law_firms_path(settings))
        return cls(
            strategy=load_strategy(settings.config_dir / "strategy.toml"),
            packs=packs,
            audience=find_audience(settings, packs, book=book, engagements=firms.engagements),
            templates=settings.config_dir / "templates",
        )

    def scope(self) -> str:
        pairs = ", ".join(f"{j} {loc}" for j, loc in self.audience.pairs())
        return f"{self.templates.parent}: {pairs or 'no jurisdiction'}"


def _problems(problems: list[str]) -> None:
    if problems:
        raise CheckFailedError(f"{len(problems)} problem(s): " + "; ".join(problems))


_WIRING_INPUTS = frozenset(
    {"compliance.toml", "strategy.toml", "channels.toml", "email settings", "law_firms.toml"}
)


def wiring_checks(book: str | None = None) -> tuple[tuple[str, Check], ...]:
    """Checks of the names one configuration file gives another (and the book, if given)."""

    def template_references(settings: Settings) -> str:
        wiring = _Wiring.load(settings, book)
        _problems(template_reference_problems(wiring.templates, wiring.strategy, wiring.audience))
        return f"every strategy step's template exists ({wiring.scope()})"

    def jurisdictions(settings: Settings) -> str:
        wiring = _Wiring.load(settings, book)
        _problems(jurisdiction_problems(settings, wiring.strategy, wiring.audience))
        return f"institution and senders for every jurisdiction ({wiring.scope()})"

    def compliance_templates(settings: Settings) -> str:
        wiring = _Wiring.load(settings, book)
        problems, inert = compliance_template_problems(
            wiring.templates, wiring.strategy, wiring.packs, wiring.audience
        )
        _problems(problems)
        detail = "every notice template of the rule packs exists"
        if inert:
            detail += f"; names no template or step uses yet: {', '.join(inert)}"
        return detail

    return (
        ("template references", template_references),
        ("jurisdictions", jurisdictions),
        ("compliance templates", compliance_templates),
    )


# --- connectivity --------------------------------------------------------------------------


def _broker(settings: Settings) -> str:
    from dunning.broker import open_publisher

    masked = settings.masked()["broker_url"]
    if settings.broker_url.startswith("memory://"):
        return "memory:// (in-process broker, nothing to reach)"
    try:
        publisher = open_publisher(settings.broker_url)
    except DunningError as exc:
        raise CheckFailedError(f"{masked}: {exc}") from exc
    publisher.close()
    return f"connected to {masked}"


def _database(settings: Settings) -> str:
    from dunning.ledger import engine as engines

    masked = settings.masked()["database_url"]
    engine = engines.make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
        current, head = engines.current_revision(engine), engines.head_revision()
    except sqlalchemy.exc.SQLAlchemyError as exc:
        first = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise CheckFailedError(f"{masked}: {type(exc).__name__}: {first}") from exc
    finally:
        engine.dispose()
    if current != head:
        raise CheckFailedError(
            f"{masked} is at migration {current or 'none'}, code expects {head}: "
            "run `dunning db upgrade`"
        )
    return f"{masked} reachable, migrations at head ({head})"


def _redis(settings: Settings) -> str:
    if not settings.redis_url:
        return "DUNNING_REDIS_URL not set: rate limits are per process"
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=3, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        raise CheckFailedError(f"{settings.masked()['redis_url']}: {exc}") from exc
    finally:
        client.close()
    return f"{settings.masked()['redis_url']} answers PING"


async def _smtp_session(settings: Settings) -> str:
    smtp = aiosmtplib.SMTP(
        hostname=settings.smtp_host,
        port=settings.smtp_port,
        use_tls=settings.smtp_tls,
        start_tls=settings.smtp_starttls,
        timeout=settings.smtp_timeout_s,
    )
    try:
        await smtp.connect()
        if settings.smtp_username:
            await smtp.login(settings.smtp_username, settings.smtp_password or "")
        await smtp.quit()
    except aiosmtplib.SMTPException as exc:
        raise CheckFailedError(f"{settings.smtp_host}:{settings.smtp_port}: {exc}") from exc
    tls = "implicit TLS" if settings.smtp_tls else "STARTTLS" if settings.smtp_starttls else "plain"
    auth = ", login accepted" if settings.smtp_username else ""
    return f"{settings.smtp_host}:{settings.smtp_port} ({tls}){auth}"


def _smtp(settings: Settings) -> str:
    return asyncio.run(_smtp_session(settings))


def _twilio(settings: Settings) -> str:
    base = (settings.twilio_api_base or _TWILIO_PUBLIC_API).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise CheckFailedError(f"DUNNING_TWILIO_API_BASE must be an http(s) URL, not {base!r}")
    sid = settings.twilio_account_sid
    url = f"{base}/2010-04-01/Accounts/{sid}/Messages/{_PROBE_SID}.json"
    request = urllib.request.Request(url)  # noqa: S310  scheme checked above
    token = base64.b64encode(f"{sid}:{settings.twilio_auth_token}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=settings.twilio_timeout_s) as response:  # noqa: S310
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CheckFailedError(f"{base} unreachable: {reason}") from exc
    if status in {401, 403}:
        raise CheckFailedError(
            f"{base} refused the credentials (HTTP {status}): check DUNNING_TWILIO_ACCOUNT_SID "
            "and DUNNING_TWILIO_AUTH_TOKEN"
        )
    if status >= 500:
        raise CheckFailedError(f"{base} answered HTTP {status}")
    return f"{base} reachable, credentials accepted"


CONNECTIVITY_CHECKS: tuple[tuple[str, Check], ...] = (
    ("broker", _broker),
    ("database", _database),
    ("redis", _redis),
    ("smtp", _smtp),
    ("twilio", _twilio),
)


def connectivity_checks(settings: Settings) -> list[CheckResult]:
    return [_guard(name, check, settings) for name, check in CONNECTIVITY_CHECKS]


def run_checks(
    settings: Settings, *, files: bool = True, services: bool = True, book: str | None = None
) -> list[CheckResult]:
    """File checks then connectivity checks, in a fixed order; ``book`` adds its locales."""
    results = file_checks(settings, book=book) if files else []
    return results + (connectivity_checks(settings) if services else [])
