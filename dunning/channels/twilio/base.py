"""What the SMS and voice adapters share: a twilio ``Client`` on our HTTP client, the sender
configuration, the templates, and status-callback URLs that carry the intent id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Self

import structlog
from twilio.rest import Client

from dunning.channels.twilio.http import (
    DunningTwilioHttpClient,
    classify_twilio_error,
    classify_twilio_status,
)
from dunning.channels_toml import TwilioChannelsConfig, load_twilio_config
from dunning.errors import ChannelError
from dunning.intents import Channel, ContactIntent, Recipient, Stage, TemplateRef
from dunning.settings import Settings
from dunning.templates import TemplateStore

__all__ = ["TwilioChannel", "twilio_client", "worst_case_intent"]

log = structlog.get_logger(__name__)


def twilio_client(settings: Settings) -> tuple[Any, DunningTwilioHttpClient]:
    """A twilio ``Client`` on our HTTP client (pointed at ``twilio_api_base`` when set)."""
    http = DunningTwilioHttpClient(
        timeout_s=settings.twilio_timeout_s, api_base=settings.twilio_api_base
    )
    client = Client(settings.twilio_account_sid, settings.twilio_auth_token, http_client=http)
    return client, http


def worst_case_intent(
    jurisdiction: str, locale: str, channel: Channel, template: str
) -> ContactIntent:
    """A synthetic intent with long values, for checking templates against their budgets."""
    created = datetime(2026, 1, 1, tzinfo=UTC)
    chinese = locale.startswith("zh")
    return ContactIntent(
        intent_id="0" * 32,
        account_id="template-check-0000",
        person_id="template-check",
        debt_id="template-check",
        jurisdiction=jurisdiction,
        stage=Stage.LATE,
        channel=channel,
        step="template.check",
        template=TemplateRef(name=template, locale=locale),
        recipient=Recipient(
            name="欧阳某某某" if chinese else "Maximilian Richardson-Whitfield",
            phone="+8613800138000" if chinese else "+12025550143",
        ),
        timezone="Asia/Shanghai" if chinese else "America/New_York",
        amount_due=Decimal("9999999.99"),
        currency="CNY" if chinese else "USD",
        days_past_due=999,
        expires_at=created + timedelta(days=1),
        strategy="template-check",
        variant="champion",
        created_at=created,
        trace_id="template-check",
    )


class TwilioChannel:
    """Base of the Twilio adapters; one instance per worker process, shared by concurrent sends."""

    channel: Channel

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

    def refuse_unsent(
        self,
        intent: ContactIntent,
        attempt: int,
        status: object,
        error_code: object = None,
        error_message: object = None,
    ) -> None:
        """Raise the classified ChannelError when Twilio answered the create with a status that
        means nothing went out (failed, canceled, undelivered): a failed attempt, not a send."""
        code = error_code if isinstance(error_code, int) else None
        message = error_message if isinstance(error_message, str) else None
        error = classify_twilio_status(str(status or ""), code, message)
        if error is None:
            return
        raise self._logged(error, intent, attempt, answered=str(status))

    def create_failed(self, exc: Exception, intent: ContactIntent, attempt: int) -> ChannelError:
        """The classified ChannelError for a create that raised, logged without personal data."""
        return self._logged(classify_twilio_error(exc), intent, attempt)

    def _logged(
        self, error: ChannelError, intent: ContactIntent, attempt: int, **extra: str
    ) -> ChannelError:
        log.warning(
            f"{self.channel.value}.send_failed",
            intent_id=intent.intent_id,
            attempt=attempt,
            error=type(error).__name__,
            code=error.provider_code,
            **extra,
        )
        return error

    async def aclose(self) -> None:
        await self._http.aclose()
