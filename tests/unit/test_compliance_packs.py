"""Rule packs: the shipped file, inheritance, effective dates and ConfigError messages."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from dunning.compliance import load_packs
from dunning.errors import ConfigError
from dunning.intents import Channel
from tests.unit.test_compliance_helpers import CONFIG, PACKS, pack

NOW = datetime(2026, 11, 28, tzinfo=UTC)

MINIMAL = """
schema = "dunning.compliance/1"
[[pack]]
jurisdiction = "XX"
version = "XX-1"
effective_from = 2024-01-01
[pack.window]
rule_id = "XX.window"
start = "08:00"
end = "20:00"
source = "test"
[[pack]]
jurisdiction = "XX"
version = "XX-2"
effective_from = 2026-06-01
[pack.window]
rule_id = "XX.window"
start = "09:00"
end = "20:00"
source = "test"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "compliance.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_file_has_the_four_jurisdictions() -> None:
    assert PACKS.jurisdictions() == ["CN", "UK", "US", "US-MA"]
    assert PACKS.source == str(CONFIG)


def test_every_number_has_a_source() -> None:
    for jurisdiction in PACKS.jurisdictions():
        found = pack(jurisdiction)
        assert found.window is not None
        assert found.window.source
        assert all(cap.source for cap in found.caps)


def test_shipped_windows_match_compliance_md() -> None:
    hours = {j: (pack(j).window.start.hour, pack(j).window.end.hour)  # type: ignore[union-attr]
             for j in PACKS.jurisdictions()}  # fmt: skip
    assert hours == {"CN": (8, 22), "US": (8, 21), "US-MA": (8, 21), "UK": (8, 21)}


def test_shipped_windows_govern_calls_texts_and_email_not_letters() -> None:
    for jurisdiction in ("CN", "US", "US-MA", "UK"):
        found = pack(jurisdiction).window
        assert found is not None
        # Field visits are held to the window too where the pack has visit rules.
        visits = {Channel.VISIT} if pack(jurisdiction).visit is not None else set()
        assert found.channels == {Channel.SMS, Channel.VOICE, Channel.EMAIL, *visits}, jurisdiction
        assert not found.governs(Channel.LETTER)


def test_a_window_without_channels_governs_every_channel(tmp_path: Path) -> None:
    found = load_packs(write(tmp_path, MINIMAL)).select("XX", NOW)
    assert found is not None
    assert found.window is not None
    assert found.window.channels == set(Channel)
    named = MINIMAL.replace('source = "test"', 'source = "test"\nchannels = ["voice"]')
    found = load_packs(write(tmp_path, named)).select("XX", NOW)
    assert found is not None
    assert found.window is not None
    assert found.window.channels == {Channel.VOICE}
    bad = MINIMAL.replace('source = "test"', 'source = "test"\nchannels = ["post"]', 1)
    with pytest.raises(ConfigError, match=r"pack\[0\]\.window\.channels: 'post' is not"):
        load_packs(write(tmp_path, bad))


def test_version_in_force_follows_effective_dates(tmp_path: Path) -> None:
    packs = load_packs(write(tmp_path, MINIMAL))
    assert packs.select("XX", datetime(2023, 12, 31, tzinfo=UTC)) is None
    old = packs.select("XX", datetime(2026, 5, 31, 23, tzinfo=UTC))
    new = packs.select("XX", datetime(2026, 6, 1, tzinfo=UTC))
    assert old is not None and new is not None  # noqa: PT018
    assert (old.version, new.version) == ("XX-1", "XX-2")
    assert new.effective_from == date(2026, 6, 1)


def test_child_cap_with_parent_id_replaces_it(tmp_path: Path) -> None:
    text = (
        MINIMAL
        + """
[[pack]]
jurisdiction = "XX-YY"
extends = "XX"
version = "XY-1"
effective_from = 2025-01-01
[[pack.caps]]
id = "cap"
channels = ["sms"]
key = "debt"
limit = 1
source = "child"
"""
    )
    merged = load_packs(write(tmp_path, text)).select("XX-YY", NOW)
    assert merged is not None
    assert merged.version == "XY-1+XX-2"
    assert merged.window is not None
    assert merged.window.start.hour == 9
    assert [c.source for c in merged.caps] == ["child"]


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ('start = "08:00"', "pack[0].window.start: '8am' is not a time like \"08:00\""),
        ('end = "20:00"', "pack[0].window.end: must be later than start"),
        ('version = "XX-1"', "pack[0].version: expected str"),
    ],
)
def test_bad_values_name_file_and_key(tmp_path: Path, broken: str, message: str) -> None:
    replacement = {
        'start = "08:00"': 'start = "8am"',
        'end = "20:00"': 'end = "07:00"',
        'version = "XX-1"': "version = 1",
    }[broken]
    path = write(tmp_path, MINIMAL.replace(broken, replacement, 1))
    with pytest.raises(ConfigError) as info:
        load_packs(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("cap", "message"),
    [
        ('channels = ["fax"]', "caps[0].channels: 'fax' is not a valid Channel"),
        ('channels = ["sms"]\nwindow = "monthly"', "caps[0].window: 'monthly' is not"),
        ('channels = ["sms"]\nlimit = 0', "caps[0].limit: must be at least 1"),
        ('channels = ["sms"]\nexclude_outcomes = ["maybe"]', "caps[0].exclude_outcomes"),
        ('channels = ["voice"]\nkind = "cooldown"', "caps[0].trigger_outcomes: a cooldown needs"),
    ],
)
def test_bad_caps_name_the_key(tmp_path: Path, cap: str, message: str) -> None:
    text = MINIMAL + f'[[pack.caps]]\nid = "c"\nkey = "debt"\nsource = "s"\n{cap}\n'
    if "limit" not in cap:
        text += "limit = 2\n"
    with pytest.raises(ConfigError, match=r"compliance\.toml: pack\[1\]") as info:
        load_packs(write(tmp_path, text))
    assert message in str(info.value)


def test_missing_file_invalid_toml_and_schema(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_packs(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_packs(write(tmp_path, "schema = "))
    with pytest.raises(ConfigError, match=r"\(root\)\.schema"):
        load_packs(write(tmp_path, MINIMAL.replace("compliance/1", "compliance/9")))


def test_extends_unknown_and_missing_window(tmp_path: Path) -> None:
    extra = '[[pack]]\njurisdiction = "ZZ"\nversion = "z"\neffective_from = 2025-01-01\n'
    with pytest.raises(ConfigError, match=r"pack\[2\]\.window: missing"):
        load_packs(write(tmp_path, MINIMAL + extra))
    with pytest.raises(ConfigError, match=r"pack\[2\]\.extends: no pack for jurisdiction 'QQ'"):
        load_packs(write(tmp_path, MINIMAL + extra + 'extends = "QQ"\n'))


def test_duplicate_effective_dates_are_rejected(tmp_path: Path) -> None:
    text = MINIMAL.replace("2026-06-01", "2024-01-01")
    with pytest.raises(ConfigError, match="two XX packs share this date"):
        load_packs(write(tmp_path, text))
