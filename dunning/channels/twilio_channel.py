"""What the SMS and voice adapters share: a twilio ``Client`` on our HTTP client, the sender
configuration, the templates, and status-callback URLs that carry the intent id."""

from __future__ import annotations

from typing import Any, Self

from twilio.rest import Client

from dunning.channels.sender_config import TwilioChannelsConfig, load_twilio_config
from dunning.channels.templates import TemplateStore
from dunning.channels.twilio_http import DunningTwilioHttpClient
from dunning.intents import ContactIntent
from dunning.settings import Settings

__all__ = ["TwilioChannel", "twilio_client"]


def twilio_client(settings: Settings) -> tuple[Any, DunningTwilioHttpClient]:
    """A twilio ``Client`` on our HTTP client (pointed at ``twilio_api_base`` when set)."""
    http = DunningTwilioHttpClient(
        timeout_s=settings.twilio_timeout_s, api_base=settings.twilio_api_base
    )
    client = Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=http)
    return client, http


class TwilioChannel:
    """Base of the Twilio adapters; one instance per worker process, shared by concurrent sends."""

    def __init__(
        self,
        *,
        client: Any,
        http: DunningTwilioHttpClient,
        config: TwilioChannelsConfig,
        templates: TemplateStore,
        webhook_public_url: str,
    ) -> None:
        self._client = client
        self._http = http
        self.config = config
        self.templates = templates
        self.webhook_public_url = webhook_public_url.rstrip("/")

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Build from settings and ``config/``; raises ConfigError when a template is unfit."""
        client, http = twilio_client(settings)
        channel = cls(
            client=client,
            http=http,
            config=load_twilio_config(settings.config_dir),
            templates=TemplateStore(settings.config_dir / "templates"),
            webhook_public_url=settings.webhook_public_url,
        )
        channel.check_templates()
        return channel

    def callback_url(self, path: str, intent: ContactIntent) -> str:
        """``{webhook}/twilio/{path}?intent_id=...``: the receipt finds its intent by this id."""
        return f"{self.webhook_public_url}/twilio/{path}?intent_id={intent.intent_id}"

    def check_templates(self) -> list[str]:
        """Render every template of the channel with worst-case values (ConfigError if unfit)."""
        raise NotImplementedError

    async def aclose(self) -> None:
        await self._http.aclose()
