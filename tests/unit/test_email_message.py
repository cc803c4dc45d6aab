"""Building emails without a server: headers on the wire, parts, config, error classification."""

from __future__ import annotations

import dataclasses
import email
import email.policy
from pathlib import Path

import aiosmtplib
import pytest

from dunning.channels.email import classify_smtp_error
from dunning.channels.email_message import (
    EmailConfig,
    RenderedEmail,
    build_message,
    load_email_config,
    message_bytes,
    render_email,
    unsubscribe_token,
    verify_unsubscribe_token,
)
from dunning.channels.templates import TemplateStore
from dunning.errors import ConfigError, PermanentChannelError, TransientChannelError
from dunning.intents import Channel
from dunning.settings import Settings
from tests.factories import T0, make_intent

TEMPLATES = Path(__file__).resolve().parents[2] / "config" / "templates"

CONFIG = EmailConfig(
    from_address="notice@mail.example-finance.com",
    message_id_domain="mail.example-finance.com",
    unsubscribe_mailto="unsubscribe@mail.example-finance.com",
    unsubscribe_url="https://hooks.example-finance.com/email/unsubscribe",
    unsubscribe_secret="k",
    from_names={"CN": "XX消费金融", "US": "Example Consumer Finance"},
    contact_numbers={"CN": "+864008001234"},
)
RENDERED = RenderedEmail(subject="您的账户已逾期", text="正文", html="<p>正文</p>")


def wire(**kwargs: object) -> bytes:
    intent = kwargs.pop("intent", make_intent(Channel.EMAIL))
    msg = build_message(CONFIG, intent, RENDERED, sent_at=T0, **kwargs)  # type: ignore[arg-type]
    return message_bytes(msg)


def test_headers_on_the_wire_are_ascii_with_crlf_and_short_lines() -> None:
    raw = wire()
    head = raw.split(b"\r\n\r\n", 1)[0]
    head.decode("ascii")  # raises if any header byte is not ASCII
    assert b"\n" not in head.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))


def test_list_unsubscribe_keeps_both_uris_readable_instead_of_encoded_words() -> None:
    intent = make_intent(Channel.EMAIL)
    raw = wire(intent=intent)
    header = next(line for line in raw.split(b"\r\n") if line.startswith(b"List-Unsubscribe:"))
    assert b"=?" not in header
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    value = str(parsed["List-Unsubscribe"])
    assert value.startswith("<mailto:unsubscribe@mail.example-finance.com?subject=unsubscribe%20")
    assert f"intent_id={intent.intent_id}&token={unsubscribe_token('k', intent.intent_id)}>" in (
        value
    )


def test_message_id_is_deterministic_from_the_intent_id() -> None:
    intent = make_intent(Channel.EMAIL)
    first = build_message(CONFIG, intent, RENDERED, sent_at=T0)
    second = build_message(CONFIG, intent, RENDERED, sent_at=T0)
    assert (
        first["Message-ID"]
        == second["Message-ID"]
        == (f"<{intent.intent_id}@mail.example-finance.com>")
    )


def test_parts_are_alternative_without_attachments_and_mixed_with_them() -> None:
    plain = email.message_from_bytes(wire(), policy=email.policy.default)
    assert plain.get_content_type() == "multipart/alternative"
    mixed = email.message_from_bytes(
        wire(attachments=[("a.pdf", b"%PDF", "application/pdf")]), policy=email.policy.default
    )
    assert mixed.get_content_type() == "multipart/mixed"
    assert [p.get_filename() for p in mixed.iter_attachments()] == ["a.pdf"]


def test_non_ascii_attachment_name_is_rfc2231_encoded() -> None:
    raw = wire(attachments=[("律师函.pdf", b"%PDF", "application/pdf")])
    assert b"filename*=utf-8''%E5%BE%8B%E5%B8%88%E5%87%BD.pdf" in raw


def test_attachment_type_must_be_type_slash_subtype() -> None:
    with pytest.raises(ValueError, match="type/subtype"):
        wire(attachments=[("a.pdf", b"%PDF", "pdf")])


def test_intent_without_email_address_is_permanent() -> None:
    intent = make_intent(Channel.EMAIL)
    intent = dataclasses.replace(
        intent, recipient=dataclasses.replace(intent.recipient, email=None)
    )
    with pytest.raises(PermanentChannelError, match="no email address"):
        build_message(CONFIG, intent, RENDERED, sent_at=T0)


def test_unsubscribe_token_verifies_only_for_its_intent_and_secret() -> None:
    token = unsubscribe_token("secret", "a" * 32)
    assert verify_unsubscribe_token("secret", "a" * 32, token)
    assert not verify_unsubscribe_token("secret", "b" * 32, token)
    assert not verify_unsubscribe_token("other", "a" * 32, token)


def test_envelope_sender_substitutes_the_intent_id() -> None:
    config = dataclasses.replace(CONFIG, envelope_from="b+{intent_id}@x.io")
    assert config.sender("abc") == "b+abc@x.io"
    assert CONFIG.sender("abc") == "notice@mail.example-finance.com"


def test_from_name_falls_back_from_state_to_country_and_fails_when_missing() -> None:
    assert CONFIG.from_name("US-MA") == "Example Consumer Finance"
    with pytest.raises(ConfigError, match="GB"):
        CONFIG.from_name("GB")


EMAIL_TEMPLATES = sorted(
    {name for _, channel, name, _ in TemplateStore(TEMPLATES).names() if channel == "email"}
)


def test_the_strategy_templates_exist() -> None:
    assert {"pre_due_reminder", "early_reminder", "credit_bureau_notice"} <= set(EMAIL_TEMPLATES)


@pytest.mark.parametrize("template", EMAIL_TEMPLATES)
@pytest.mark.parametrize("jurisdiction", ["CN", "US"])
def test_every_email_template_renders_with_opt_out_and_us_disclosure(
    template: str, jurisdiction: str
) -> None:
    intent = make_intent(Channel.EMAIL, jurisdiction=jurisdiction)
    intent = dataclasses.replace(
        intent, template=dataclasses.replace(intent.template, name=template)
    )
    rendered = render_email(TemplateStore(TEMPLATES), CONFIG, intent)
    assert "\n" not in rendered.subject
    for body in (rendered.text, rendered.html):
        assert "/email/unsubscribe?intent_id=" in body
        assert ("退订" if jurisdiction == "CN" else "unsubscribe") in body
        if jurisdiction == "US":
            assert "attempt to collect a debt" in body


def test_load_email_config_takes_institution_names_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "channels.toml").write_text(
        '[institution.CN]\nname = "XX消费金融"\ncallback_number = "+864008001234"\n'
        '[email]\nfrom_address = "n@x.io"\nmessage_id_domain = "x.io"\n'
        'unsubscribe_mailto = "u@x.io"\npool_size = 3\n'
        '[email.from_names]\nUS = "ECF"\n',
        encoding="utf-8",
    )
    settings = Settings(config_dir=tmp_path, webhook_public_url="https://hooks.x.io")
    config = load_email_config(settings)
    assert config.from_names == {"CN": "XX消费金融", "US": "ECF"}
    assert config.contact_numbers == {"CN": "+864008001234"}
    assert config.unsubscribe_url == "https://hooks.x.io/email/unsubscribe"
    assert config.unsubscribe_secret == settings.webhook_secret
    assert config.pool_size == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[sms]\n", "no \\[email\\] section"),
        ('[email]\nmessage_id_domain = "x"\nunsubscribe_mailto = "u@x"\n', "from_address"),
        ('[email]\nfrom_address = "a@x"\nmessage_id_domain = "x"\nunsubscribe_mailto = "u@x"\n'
         "pool_size = 0\n", "pool_size"),
        ("[email\n", "channels.toml"),
    ],
)  # fmt: skip
def test_load_email_config_names_what_is_wrong(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "channels.toml").write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_email_config(Settings(config_dir=tmp_path))


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "no", "a@b")]),
         PermanentChannelError, "550"),
        (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(451, "later", "a@b")]),
         TransientChannelError, "451"),
        (aiosmtplib.SMTPDataError(552, "too big"), PermanentChannelError, "552"),
        (aiosmtplib.SMTPDataError(421, "closing"), TransientChannelError, "421"),
        (aiosmtplib.SMTPSenderRefused(530, "auth required", "a@b"), TransientChannelError, "530"),
        (aiosmtplib.SMTPAuthenticationError(535, "bad"), TransientChannelError, "535"),
        (aiosmtplib.SMTPServerDisconnected("gone"), TransientChannelError, None),
        (aiosmtplib.SMTPReadTimeoutError("slow"), TransientChannelError, None),
        (aiosmtplib.SMTPConnectError("refused"), TransientChannelError, None),
        (ConnectionResetError("reset"), TransientChannelError, None),
        (aiosmtplib.SMTPNotSupported("no SMTPUTF8"), PermanentChannelError, None),
    ],
)  # fmt: skip
def test_classify_smtp_error(exc: BaseException, kind: type[Exception], code: str | None) -> None:
    translated = classify_smtp_error(exc)
    assert type(translated) is kind
    assert translated.provider_code == code


@pytest.mark.parametrize(
    ("exc", "before_provider"),
    [
        (aiosmtplib.SMTPConnectError("connection refused"), True),
        (aiosmtplib.SMTPConnectTimeoutError("no answer to connect"), True),
        (aiosmtplib.SMTPServerDisconnected("gone after DATA"), False),
        (aiosmtplib.SMTPReadTimeoutError("slow after DATA"), False),
        (aiosmtplib.SMTPDataError(451, "try later"), False),
    ],
)  # fmt: skip
def test_only_a_failed_connect_is_before_the_provider(
    exc: BaseException, before_provider: bool
) -> None:
    # A message that never had a session reached nobody: the caps leave the attempt out.
    assert classify_smtp_error(exc).before_provider is before_provider
