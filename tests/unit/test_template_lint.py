"""Template lint: each content rule on its own tmp template folder, and the CLI's exit code."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from dunning.cli.main import app
from dunning.compliance.template_lint import LintResult, institution_samples, lint_templates
from dunning.templates import LEGAL_MARK

US_SMS_OK = (
    "This is a debt collector; this is an attempt to collect a debt. {{ name }}, {{ amount }} "
    "is past due. Call {{ callback_number }}. {{ opt_out }}"
)
CONFIG = Path(__file__).resolve().parents[2] / "config"
SAMPLES = {
    "en-US": {"opt_out": "Reply STOP to opt out", "institution": "Example Finance"},
    "zh-CN": {"opt_out": "回复TD退订", "institution": "XX消费金融"},
}


def make(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def failures(results: list[LintResult]) -> set[tuple[str, str]]:
    return {(r.template, r.rule) for r in results if not r.ok}


def test_clean_us_sms_passes_every_rule(tmp_path: Path) -> None:
    make(tmp_path, {"en-US/sms/early.txt.j2": US_SMS_OK})
    results = lint_templates(tmp_path, SAMPLES)
    assert {r.rule for r in results} == {
        "render", "opt_out", "us_disclosure", "banned_wording", "legal_wording_marked",
    }  # fmt: skip
    assert failures(results) == set()


def test_1006_6e_sms_without_opt_out_fails(tmp_path: Path) -> None:
    make(tmp_path, {"en-US/sms/early.txt.j2": US_SMS_OK.replace("{{ opt_out }}", "")})
    assert failures(lint_templates(tmp_path, SAMPLES)) == {("en-US/sms/early", "opt_out")}


def test_1006_6e_each_email_body_needs_an_opt_out(tmp_path: Path) -> None:
    disclosure = "This is an attempt to collect a debt by a debt collector."
    make(tmp_path, {
        "en-US/email/early.txt.j2": f"{disclosure} To unsubscribe: {{{{ unsubscribe_url }}}}",
        "en-US/email/early.html.j2": f"<p>{disclosure}</p>",
        "en-US/email/early.subject.j2": "Your account",
    })  # fmt: skip
    results = [r for r in lint_templates(tmp_path, SAMPLES) if not r.ok]
    assert [(r.rule, r.detail) for r in results] == [("opt_out", "html part has no opt-out line")]


def test_1006_18e_us_message_without_disclosure_fails(tmp_path: Path) -> None:
    make(tmp_path, {"en-US/sms/early.txt.j2": "{{ name }}, you owe {{ amount }}. {{ opt_out }}"})
    assert failures(lint_templates(tmp_path, SAMPLES)) == {("en-US/sms/early", "us_disclosure")}


def test_cn_message_needs_no_us_disclosure(tmp_path: Path) -> None:
    make(tmp_path, {"zh-CN/sms/early.txt.j2": "{{ name }}您好，应还{{ amount }}。{{ opt_out }}"})
    results = lint_templates(tmp_path, SAMPLES)
    assert "us_disclosure" not in {r.rule for r in results}
    assert failures(results) == set()


def test_pre_due_reminder_carries_no_collection_wording(tmp_path: Path) -> None:
    make(tmp_path, {
        "en-US/sms/pre_due_ok.txt.j2": "{{ name }}, {{ amount }} is due soon. {{ opt_out }}",
        "en-US/sms/pre_due_bad.txt.j2": US_SMS_OK,
    })  # fmt: skip
    assert failures(lint_templates(tmp_path, SAMPLES)) == {
        ("en-US/sms/pre_due_bad", "pre_due_no_collection_wording")
    }


@pytest.mark.parametrize(
    "wording",
    ["the police will visit", "you may face arrest", "you will be blacklisted",
     "borrow money to repay us", "we will take you to court", "a government agency"],
)  # fmt: skip
def test_1692e_banned_wording_in_english(tmp_path: Path, wording: str) -> None:
    make(tmp_path, {"en-US/sms/early.txt.j2": f"{US_SMS_OK} {wording}"})
    found = failures(lint_templates(tmp_path, SAMPLES))
    # Court is also legal wording, which an unmarked message may not carry.
    assert found - {("en-US/sms/early", "legal_wording_marked")} == {
        ("en-US/sms/early", "banned_wording")
    }


@pytest.mark.parametrize("wording", ["法院", "公安", "拘留", "黑名单", "征信黑名单", "借钱还"])
def test_cba2026_banned_wording_in_chinese(tmp_path: Path, wording: str) -> None:
    make(tmp_path, {"zh-CN/sms/early.txt.j2": f"请尽快还款，否则{wording}。{{{{ opt_out }}}}"})
    found = failures(lint_templates(tmp_path, SAMPLES))
    assert found - {("zh-CN/sms/early", "legal_wording_marked")} == {
        ("zh-CN/sms/early", "banned_wording")
    }


def test_lawyer_letter_may_mention_legal_action_factually(tmp_path: Path) -> None:
    make(tmp_path, {
        "zh-CN/letter/lawyer_letter.body.j2":
            "{# legal: true #}\n如协商不成，债权人可能依法向法院提起诉讼。",
        "en-US/letter/lawyer_letter.body.j2": "{# legal: true #}\n"
            "This is an attempt to collect a debt. The creditor may bring legal action in court.",
        "en-US/letter/threat.body.j2": "This is an attempt to collect a debt. Police will come.",
    })  # fmt: skip
    assert failures(lint_templates(tmp_path, SAMPLES)) == {
        ("en-US/letter/threat", "banned_wording")
    }


@pytest.mark.parametrize(
    ("rel", "text", "said"),
    [
        ("en-US/letter/notice.body.j2", "A debt collector writes. Our attorney has your file.",
         "attorney"),
        ("en-US/email/notice.txt.j2", "An attempt to collect a debt. We may file a lawsuit. "
         "unsubscribe", "lawsuit"),
        ("zh-CN/letter/notice.title.j2", "律师函", "律师函"),
        ("zh-CN/sms/notice.txt.j2", "您的欠款可能被起诉。回复TD退订", "起诉"),
    ],
)  # fmt: skip
def test_1006_26b_legal_wording_needs_the_legal_mark(
    tmp_path: Path, rel: str, text: str, said: str
) -> None:
    make(tmp_path / "unmarked", {rel: text})
    key = rel.rsplit(".", 2)[0]
    [result] = [r for r in lint_templates(tmp_path / "unmarked", SAMPLES)
                if r.rule == "legal_wording_marked"]  # fmt: skip
    assert (result.template, result.ok) == (key, False)
    assert repr(said) in result.detail
    make(tmp_path / "marked", {rel: "{# legal: true #}\n" + text})
    marked = lint_templates(tmp_path / "marked", SAMPLES)
    assert [r.ok for r in marked if r.rule == "legal_wording_marked"] == [True]


def test_1006_26b_the_shipped_final_notice_fails_without_its_mark(tmp_path: Path) -> None:
    root = tmp_path / "templates"
    shutil.copytree(CONFIG / "templates", root)
    samples = institution_samples(CONFIG / "channels.toml")
    assert failures(lint_templates(root, samples)) == set()
    body = root / "en-US" / "letter" / "final_notice.body.j2"
    body.write_text(body.read_text(encoding="utf-8").replace(LEGAL_MARK, "", 1), encoding="utf-8")
    assert failures(lint_templates(root, samples)) == {
        ("en-US/letter/final_notice", "legal_wording_marked")
    }


def test_1006_2j_voicemail_is_limited_content(tmp_path: Path) -> None:
    script = "This is an attempt to collect a debt from a debt collector."
    make(tmp_path, {
        "en-US/voice/ok.txt.j2": script,
        "en-US/voice/ok.voicemail.j2": "This is {{ contact_name }}. Call {{ callback_number }}.",
        "en-US/voice/bad.txt.j2": script,
        "en-US/voice/bad.voicemail.j2": "Please call about {{ amount }}.",
        "zh-CN/voice/bad.voicemail.j2": "您好，您的账户已逾期，请回电。",
    })  # fmt: skip
    results = [r for r in lint_templates(tmp_path, SAMPLES) if not r.ok]
    assert {(r.template, r.rule) for r in results} == {
        ("en-US/voice/bad", "voicemail_limited_content"),
        ("zh-CN/voice/bad", "voicemail_limited_content"),
    }
    bad = next(r for r in results if r.template == "en-US/voice/bad")
    assert "amount" in bad.detail


def test_render_failure_is_reported_not_raised(tmp_path: Path) -> None:
    make(tmp_path, {"en-US/sms/early.txt.j2": "{% if %}broken"})
    results = lint_templates(tmp_path, SAMPLES)
    assert [(r.rule, r.ok) for r in results] == [("render", False)]
    assert "en-US/sms/early.txt.j2" in results[0].detail


def test_institution_samples_from_channels_toml(tmp_path: Path) -> None:
    toml = tmp_path / "channels.toml"
    toml.write_text(
        '[institution.CN]\nname = "XX"\nlocale = "zh-CN"\nopt_out = "回复TD退订"\n',
        encoding="utf-8",
    )
    assert institution_samples(toml)["zh-CN"]["opt_out"] == "回复TD退订"
    assert institution_samples(tmp_path / "absent.toml") == {}


@pytest.fixture
def keep_logging() -> Iterator[None]:
    """The CLI configures structlog for CliRunner's stream; restore it for the tests after."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.mark.usefixtures("keep_logging")
def test_cli_exits_1_on_failure_and_0_when_clean(tmp_path: Path) -> None:
    runner = CliRunner()
    make(tmp_path / "good", {"en-US/sms/early.txt.j2": US_SMS_OK})
    channels = tmp_path / "channels.toml"
    channels.write_text(
        '[institution.US]\nname = "E"\nlocale = "en-US"\nopt_out = "Reply STOP to opt out"\n',
        encoding="utf-8",
    )
    ok = runner.invoke(app, ["templates", "check", "--root", str(tmp_path / "good"),
                             "--channels", str(channels)])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    assert "1 messages, 5 checks, 0 failed" in ok.output
    make(tmp_path / "bad", {"en-US/sms/early.txt.j2": "Pay {{ amount }} or the police come."})
    bad = runner.invoke(app, ["templates", "check", "--root", str(tmp_path / "bad"),
                              "--channels", str(channels), "--failures-only"])  # fmt: skip
    assert bad.exit_code == 1
    assert "FAIL" in bad.output
    missing = runner.invoke(app, ["templates", "check", "--root", str(tmp_path / "none")])
    assert missing.exit_code == 2
