"""The console's guards without a browser: CSRF on every POST, roles, the sign-in rate limit,
sessions that end with a password change, the bind check, users from the command line, and
no personal data in its logs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient
from structlog.testing import capture_logs
from typer.testing import CliRunner

from dunning.cli.main import app as cli
from dunning.console.app import build_app
from dunning.console.pages.people import normalise
from dunning.console.sections import all_sections
from dunning.console.security import (
    LoginLimiter,
    check_bind,
    hash_password,
    verify_password,
)
from dunning.console.server import ConsoleOptions, open_console
from dunning.console.web import ConsoleDeps
from dunning.errors import ConfigError
from dunning.ledger import Ledger
from dunning.settings import Settings

CONFIG = Path(__file__).resolve().parents[2] / "config"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleDeps]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger.open(url).close()  # migrated to head, console_users included
    settings = Settings(broker_url="memory://", database_url=url, config_dir=CONFIG)
    with open_console(settings, ConsoleOptions()) as deps:
        deps.secure_cookies = False  # the test client speaks plain HTTP
        for name, role in (("olga", "operator"), ("vera", "viewer")):
            deps.store.add_user(
                name, role, hash_password(PASSWORD), now=datetime.now(UTC), replace=False
            )
        yield deps


@pytest.fixture
def client(console: ConsoleDeps) -> TestClient:
    return TestClient(build_app(console, secret_key="k" * 48))


def csrf(client: TestClient, path: str = "/login") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None, path
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str = PASSWORD) -> int:
    token = csrf(client)
    answer = client.post(
        "/login",
        data={"csrf_token": token, "name": name, "password": password},
        follow_redirects=False,
    )
    return answer.status_code


def test_every_post_route_checks_the_csrf_token(client: TestClient) -> None:
    posts = [
        route
        for route in client.app.routes  # type: ignore[attr-defined]
        if isinstance(route, Route) and "POST" in (route.methods or ())
    ]
    assert {r.path for r in posts} >= {"/login", "/logout", "/dead-letters/replay"}
    assert [r.path for r in posts if not getattr(r.endpoint, "csrf_checked", False)] == []


def test_a_post_without_the_token_is_refused_even_when_signed_in(client: TestClient) -> None:
    assert sign_in(client, "olga") == 303
    answer = client.post("/dead-letters/purge", data={"channel": "sms", "confirm": "1"})
    assert answer.status_code == 403
    assert "CSRF" in answer.text


def test_pages_need_a_session_and_admin_pages_the_admin_role(client: TestClient) -> None:
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"
    assert sign_in(client, "vera") == 303
    assert client.get("/").status_code == 200
    assert client.get("/admin/users").status_code == 403
    token = csrf(client, "/people")
    refused = client.post("/dead-letters/replay", data={"csrf_token": token, "mode": "dry_run"})
    assert refused.status_code == 403  # a viewer has no actions


def test_sign_in_is_rate_limited_per_name(client: TestClient) -> None:
    for _ in range(5):
        assert sign_in(client, "olga", "wrong password here") == 401
    assert sign_in(client, "olga") == 429  # even the right password waits now
    assert sign_in(client, "vera") == 303  # another name is not held back


def test_a_new_password_ends_the_sessions_opened_before(
    client: TestClient, console: ConsoleDeps
) -> None:
    assert sign_in(client, "olga") == 303
    assert client.get("/", follow_redirects=False).status_code == 200
    console.store.add_user(
        "olga",
        "operator",
        hash_password("another long password"),
        now=datetime.now(UTC),
        replace=True,
    )
    assert client.get("/", follow_redirects=False).headers["location"] == "/login"


def test_a_phone_search_leaves_the_number_out_of_logs_and_urls(client: TestClient) -> None:
    assert sign_in(client, "olga") == 303
    token = csrf(client, "/people")
    with capture_logs() as logs:
        answer = client.post(
            "/people/search", data={"csrf_token": token, "kind": "phone", "value": "+12025550199"}
        )
    assert answer.status_code == 200
    assert "No person matches exactly" in answer.text
    assert logs, "each request leaves a log line"
    assert "2025550199" not in repr(logs)


def test_the_limiter_forgets_failures_once_the_window_passed() -> None:
    now = [0.0]
    limiter = LoginLimiter(max_failures=2, window_s=60, now=lambda: now[0])
    limiter.failed("user:a")
    limiter.failed("user:a")
    assert limiter.retry_after_s("user:a") == 60
    now[0] = 45.0
    assert limiter.retry_after_s("user:a") == 15
    now[0] = 60.0
    assert limiter.retry_after_s("user:a") == 0


def test_the_console_refuses_plain_http_beyond_loopback(tmp_path: Path) -> None:
    check_bind("127.0.0.1", tls_cert=None, tls_key=None, behind_tls_proxy=False)
    check_bind("0.0.0.0", tls_cert=None, tls_key=None, behind_tls_proxy=True)
    with pytest.raises(ConfigError, match="without TLS"):
        check_bind("0.0.0.0", tls_cert=None, tls_key=None, behind_tls_proxy=False)
    check_bind("0.0.0.0", tls_cert=None, tls_key=None, behind_tls_proxy=False, insecure_http=True)
    with pytest.raises(ConfigError, match="go together"):
        check_bind("10.0.0.5", tls_cert=tmp_path / "c.pem", tls_key=None, behind_tls_proxy=False)
    with pytest.raises(ConfigError, match="does not exist"):
        check_bind(
            "10.0.0.5",
            tls_cert=tmp_path / "c.pem",
            tls_key=tmp_path / "k.pem",
            behind_tls_proxy=False,
        )


def test_passwords_are_argon2_hashes_and_short_ones_are_refused() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, PASSWORD)
    assert not verify_password(stored, PASSWORD + "!")
    with pytest.raises(ValueError, match="at least 12"):
        hash_password("short")


@pytest.mark.parametrize(
    ("kind", "typed", "stored"),
    [
        ("phone", "+1 (202) 555-0199", "+12025550199"),
        ("phone", "0086 138 0013 8000", "+8613800138000"),
        ("email", " Zhang.San@Example.com ", "zhang.san@example.com"),
        ("account", " acct-1 ", "acct-1"),
    ],
)
def test_search_values_are_normalised(kind: str, typed: str, stored: str) -> None:
    assert normalise(kind, typed) == stored


def test_a_phone_without_its_country_code_is_refused() -> None:
    with pytest.raises(ValueError, match="country code"):
        normalise("phone", "202 555 0199")


def test_every_section_asks_for_a_permission_its_routes_enforce() -> None:
    for section in all_sections():
        for route in section.routes:
            assert isinstance(route, Route)
            wrapped = getattr(route.endpoint, "__wrapped__", None)
            assert wrapped is not None, f"{route.path} is not behind page() or action()"


def test_user_add_reads_the_password_from_stdin_and_refuses_a_duplicate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    Ledger.open(url).close()
    monkeypatch.setenv("DUNNING_DATABASE_URL", url)
    runner = CliRunner()
    args = ["console", "user", "add", "alice", "--role", "operator", "--password-stdin"]
    first = runner.invoke(cli, args, input=PASSWORD + "\n")
    assert first.exit_code == 0, first.output
    assert "added console user alice (operator)" in first.output
    again = runner.invoke(cli, args, input=PASSWORD + "\n")
    assert again.exit_code == 2
    assert "exists; add --replace" in again.output
    wrong = runner.invoke(cli, [*args[:5], "boss", "--password-stdin"], input=PASSWORD + "\n")
    assert wrong.exit_code == 2
    assert "unknown role 'boss'" in wrong.output


def test_the_command_refuses_a_public_address_without_tls() -> None:
    done = CliRunner().invoke(cli, ["console", "--host", "0.0.0.0", "--port", "8090"])
    assert done.exit_code == 2
    assert "refusing to listen on 0.0.0.0 without TLS" in done.output
