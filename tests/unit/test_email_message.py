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
from dunning.errors import ConfigError, PermanentChannelError, TransientChannelError
from dunning.intents import Channel, TemplateRef
from dunning.settings import Settings
from dunning.templates import TemplateStore
from tests.factories import T0, make_intent

TEMPLATES = Path(__file__).resolve().parents[2] / "config" / "templates"

CONFIG = EmailConfig(
    from_address="notice@mail.example-finance.com",
    message_id_domain="mail.example-finance.com",
    unsubscribe_url="https://hooks.example-finance.com/email/unsubscribe",
    unsubscribe_secret="k",
    from_names={"CN": "XX消费金融", "US": "Example Consumer Finance", "UK": "ECF UK"},
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


def test_list_unsubscribe_offers_only_the_one_click_url_readable_not_encoded() -> None:
    # No mailto: nothing reads mail sent to an unsubscribe address, so none is offered.
    intent = make_intent(Channel.EMAIL)
    raw = wire(intent=intent)
    header = next(line for line in raw.split(b"\r\n") if line.startswith(b"List-Unsubscribe:"))
    assert b"=?" not in header
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    token = unsubscribe_token("k", intent.intent_id)
    assert str(parsed["List-Unsubscribe"]) == (
        "<https://hooks.example-finance.com/email/unsubscribe"
        f"?intent_id={intent.intent_id}&token={token}>"
    )
    assert "mailto" not in raw.decode("ascii")
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


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


LOCALES = {"CN": "zh-CN", "US": "en-US", "UK": "en-GB"}
EMAIL_TEMPLATES = sorted(
    {
        (jurisdiction, name)
        for locale, channel, name, _ in TemplateStore(TEMPLATES).names()
        for jurisdiction in LOCALES
        if channel == "email" and locale == LOCALES[jurisdiction]
    }
)
#: What a validation notice's sender supplies from its records (the intent carries no itemization).
ITEMIZATION = {
    "itemization_date": "August 1, 2026",
    "itemization_amount": "$1,180.00",
    "interest_since_itemization": "$42.50",
    "fees_since_itemization": "$25.00",
    "payments_since_itemization": "$0.00",
    "validation_end_date": "January 4, 2027",
}


def test_the_strategy_templates_exist() -> None:
    for jurisdiction in LOCALES:
        names = {name for j, name in EMAIL_TEMPLATES if j == jurisdiction}
        assert {"pre_due_reminder", "early_reminder", "credit_bureau_notice"} <= names
    assert ("US", "validation_notice") in EMAIL_TEMPLATES


@pytest.mark.parametrize(("jurisdiction", "template"), EMAIL_TEMPLATES)
def test_every_email_template_renders_with_opt_out_and_us_disclosure(
    template: str, jurisdiction: str
) -> None:
    intent = make_intent(Channel.EMAIL, jurisdiction=jurisdiction)
    intent = dataclasses.replace(intent, template=TemplateRef(template, LOCALES[jurisdiction]))
    rendered = render_email(TemplateStore(TEMPLATES), CONFIG, intent, ITEMIZATION)
    assert "\n" not in rendered.subject
    for body in (rendered.text, rendered.html):
        assert "/email/unsubscribe?intent_id=" in body
        assert ("退订" if jurisdiction == "CN" else "unsubscribe") in body
        if jurisdiction == "US":
            assert "attempt to collect a debt" in body
        if jurisdiction == "UK":  # US-only statements stay out; free debt advice is signposted
            assert "debt collector" not in body
            assert "MoneyHelper" in body or template == "pre_due_reminder"


def test_load_email_config_takes_institution_names_and_overrides(tmp_path: Path) -> None:
    (tmp_path / "channels.toml").write_text(
        '[institution.CN]\nname = "XX消费金融"\ncallback_number = "+864008001234"\n'
        '[email]\nfrom_address = "n@x.io"\nmessage_id_domain = "x.io"\n'
        "pool_size = 3\n"
        '[email.from_names]\nUS = "ECF"\n',
        encoding="utf-8",
    )
    settings = Settings(
        config_dir=tmp_path,
        webhook_public_url="https://hooks.x.io",
        webhook_secret="vendor-key",
        unsubscribe_secret="unsubscribe-key",
    )
    config = load_email_config(settings)
    assert config.from_names == {"CN": "XX消费金融", "US": "ECF"}
    assert config.contact_numbers == {"CN": "+864008001234"}
    assert config.unsubscribe_url == "https://hooks.x.io/email/unsubscribe"
    assert config.unsubscribe_secret == "unsubscribe-key"  # not the vendor-signature key
    assert config.pool_size == 3


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[sms]\n", "no \\[email\\] section"),
        ('[email]\nmessage_id_domain = "x"\n', "from_address"),
        ('[email]\nfrom_address = "a@x"\nmessage_id_domain = "x"\npool_size = 0\n', "pool_size"),
        ('[email]\nfrom_address = "a@x"\nmessage_id_domain = "x"\nunsubscribe_mailto = "u@x"\n',
         "unsubscribe_mailto is no longer offered"),
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


ATTACKS = {
    "encoded word hiding a Bcc": "=?utf-8?q?x=0D=0ABcc=3A_evil=40attacker.example=0D=0A?=",
    "encoded word hiding a body": (
        "=?utf-8?q?x=0D=0AContent-Type=3A_text=2Fhtml=0D=0A=0D=0A<b>pay_here</b>?="
    ),
    "raw line break": "Jane\r\nBcc: evil@attacker.example",
    "NUL": "Jane\x00Doe",
    "5,000 characters": "J" * 5000,
}


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", v) for v in ATTACKS.values()]
    + [
        ("email", "=?utf-8?q?x=0D=0ABcc=3A_evil=40attacker.example=0D=0A?=@example.com"),
        ("email", "a\x00b@example.com"),
        ("subject", "=?utf-8?q?x=0D=0ABcc=3A_evil=40attacker.example=0D=0A?="),
        ("sender", "=?utf-8?q?x=0D=0ABcc=3A_evil=40attacker.example=0D=0A?="),
    ],
    ids=[*ATTACKS, "email encoded word", "email NUL", "subject", "sender"],
)
def test_text_that_could_forge_headers_is_refused_at_build(field: str, value: str) -> None:
    intent = make_intent(Channel.EMAIL, jurisdiction="US")
    config, rendered = CONFIG, RENDERED
    if field in ("name", "email"):
        recipient = dataclasses.replace(intent.recipient, **{field: value})
        intent = dataclasses.replace(intent, recipient=recipient)
    elif field == "subject":
        rendered = dataclasses.replace(RENDERED, subject=value)
    else:
        config = dataclasses.replace(CONFIG, from_names={"US": value})
    with pytest.raises(PermanentChannelError) as caught:
        message_bytes(build_message(config, intent, rendered, sent_at=T0))
    assert caught.value.provider_code == "unsafe_header"
    assert "refused as header text" in caught.value.reason
    assert value not in caught.value.reason
    assert "evil" not in caught.value.reason


def test_the_validation_notice_itemizes_the_debt_and_gives_the_validation_end_date() -> None:
    intent = make_intent(Channel.EMAIL, jurisdiction="US")
    intent = dataclasses.replace(
        intent, template=dataclasses.replace(intent.template, name="validation_notice")
    )
    rendered = render_email(TemplateStore(TEMPLATES), CONFIG, intent, ITEMIZATION)
    for body in (rendered.text, rendered.html):
        assert "As of August 1, 2026, you owed" in body
        assert "+ $42.50" in body
        assert "+ $25.00" in body
        assert "Call or write to us by <strong>January 4, 2027</strong>" in body or (
            "Call or write to us by January 4, 2027" in body
        )
        assert "www.cfpb.gov/debt-collection" in body
    assert "validation notice" in rendered.subject


def test_the_validation_notice_never_goes_out_without_its_itemization() -> None:
    intent = make_intent(Channel.EMAIL, jurisdiction="US")
    intent = dataclasses.replace(
        intent, template=dataclasses.replace(intent.template, name="validation_notice")
    )
    with pytest.raises(ConfigError, match="itemization_date"):
        render_email(TemplateStore(TEMPLATES), CONFIG, intent)


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
