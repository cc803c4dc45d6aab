"""The operator's TOML files: one reader with one way to fail, and channels.toml read in one place
whose sections are checked only when a reader asks for them."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dunning.channels.letter.law_firms import LawFirms
from dunning.channels_toml import CHANNELS_TOML, ChannelsToml, load_channels_toml
from dunning.compliance.packs import load_packs
from dunning.errors import ConfigError
from dunning.intents import Channel
from dunning.producers.strategy import load_strategy
from dunning.toml_files import read_toml

CONFIG = Path(__file__).resolve().parents[2] / "config"

LOADERS: dict[str, Callable[[Path], Any]] = {
    "channels.toml": load_channels_toml,
    "strategy.toml": load_strategy,
    "compliance.toml": load_packs,
    "law_firms.toml": LawFirms.load,
}


def test_read_toml_parses_a_document(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text('[a]\nb = "c"\n', encoding="utf-8")
    assert read_toml(path) == {"a": {"b": "c"}}


def test_a_missing_file_is_named_unless_it_may_be_missing(tmp_path: Path) -> None:
    absent = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=re.escape(f"cannot read {absent}: file not found")):
        read_toml(absent)
    assert read_toml(absent, missing_ok=True) == {}


def test_a_folder_in_place_of_the_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "x.toml").mkdir()
    with pytest.raises(ConfigError, match=r"cannot read .*x\.toml"):
        read_toml(tmp_path / "x.toml", missing_ok=True)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_every_loader_names_the_file_and_the_line_of_bad_toml(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text('schema = "x"\n\n[section\n', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        LOADERS[name](path)
    assert str(info.value).startswith(f"{path}: not valid TOML: ")
    assert "line 3" in str(info.value)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_every_loader_refuses_text_that_is_not_utf8(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b'name = "\xff"\n')
    message = f"{path}: not valid TOML: not UTF-8 at byte 8"
    with pytest.raises(ConfigError, match=re.escape(message)):
        LOADERS[name](path)


@pytest.mark.parametrize("name", sorted(LOADERS))
def test_every_loader_names_a_missing_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(ConfigError, match=re.escape(f"cannot read {path}: file not found")):
        LOADERS[name](path)


def test_sections_are_checked_only_when_asked_for(tmp_path: Path) -> None:
    channels = ChannelsToml(
        tmp_path / CHANNELS_TOML,
        {"sms": {"senders": {"CN": {"from": "not a number"}}}, "letter": {"render_processes": 2}},
    )
    with pytest.raises(ConfigError, match=r"\[sms\.senders\.CN\] from must be an E\.164"):
        channels.twilio()
    letter = channels.letter()  # the letter worker starts whatever the SMS senders say
    assert letter.render_processes == 2
    assert letter.law_firms == tmp_path / "law_firms.toml"
    assert channels.rate_limits(Channel.SMS).account_per_s is None
    with pytest.raises(ConfigError, match=r"no \[email\] section"):
        channels.email()


def test_shipped_channels_toml_gives_every_section(tmp_path: Path) -> None:
    shutil.copy(CONFIG / CHANNELS_TOML, tmp_path / CHANNELS_TOML)
    channels = load_channels_toml(tmp_path / CHANNELS_TOML)
    assert set(channels.twilio().institutions) == {"CN", "US", "UK"}
    assert channels.email().from_names["CN"] == channels.twilio().institution("CN").name
    assert channels.letter().law_firms == tmp_path / "law_firms.toml"
    assert channels.rate_limits(Channel.SMS).sender_per_s is not None
    assert channels.institution_samples()["zh-CN"]["callback_number"] == "+864008001234"


def test_a_missing_channels_toml_reads_as_empty_only_when_allowed(tmp_path: Path) -> None:
    empty = load_channels_toml(tmp_path / CHANNELS_TOML, missing_ok=True)
    assert empty.letter().templates == tmp_path / "templates"
    assert empty.rate_limits(Channel.EMAIL).burst == 1
    assert empty.institution_samples() == {}
    with pytest.raises(ConfigError, match="file not found"):
        load_channels_toml(tmp_path / CHANNELS_TOML)
