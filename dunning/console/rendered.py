"""What an intent says: its template rendered again from the intent kept in the ledger.

The text is rendered with the same templates and the institution of the intent's
jurisdiction (config/channels.toml), so it matches what the channel sent unless a template
changed since. A template that cannot be rendered here says why instead of failing the page.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from dunning.channels_toml import load_twilio_config
from dunning.errors import ConfigError
from dunning.intents import ContactIntent
from dunning.templates import TemplateStore, template_context

__all__ = ["rendered_text"]

#: The part of each channel's template that holds the words a person reads or hears.
_PART = {"sms": "txt", "voice": "txt", "email": "txt", "letter": "body"}


@lru_cache(maxsize=4)
def _store(root: Path) -> TemplateStore:
    return TemplateStore(root)


def rendered_text(intent: ContactIntent, config_dir: Path) -> str:
    channel = intent.channel.value
    extra: dict[str, str] = {}
    prefix = ""
    try:
        institution = load_twilio_config(config_dir).institution(intent.jurisdiction)
    except ConfigError:
        institution = None
    if institution is not None:
        extra = {
            "institution": institution.name,
            "opt_out": institution.opt_out,
            "callback_number": institution.callback_number,
            "contact_name": institution.contact_name,
        }
        prefix = institution.sms_prefix if channel == "sms" else ""
    try:
        text = _store(config_dir / "templates").render(
            intent.template.locale,
            channel,
            intent.template.name,
            _PART[channel],
            template_context(intent, extra),
        )
    except ConfigError as exc:
        return f"(not rendered here: {exc})"
    return prefix + text
