"""The alternative, as a team would write it: one Celery task per SMS with ``acks_late``.

The task renders the same template (dunning's SMS rendering: institution prefix + Jinja
template), calls the twilio SDK (its stock synchronous client, pointed at the stand-in through
the documented ``http_client`` hook) and records the send with one INSERT in the same
PostgreSQL. Settings come from BENCH_* environment variables set by ``celery_baseline.py``.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from celery import Celery
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from dunning.channels.twilio.sms import SmsChannel
from dunning.channels_toml import load_twilio_config
from dunning.intents import decode_intent
from dunning.templates import TemplateStore

app = Celery("bench", broker=os.environ.get("BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1//"))
app.conf.update(
    task_acks_late=True,
    worker_prefetch_multiplier=1,
    task_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
)


class StandInHttpClient(TwilioHttpClient):
    """Sends every twilio.com request to the stand-in instead."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        base = urlsplit(os.environ["BENCH_TWILIO_API_BASE"])
        parts = urlsplit(url)._replace(scheme=base.scheme, netloc=base.netloc)
        return super().request(method, urlunsplit(parts), *args, **kwargs)


_state: dict[str, Any] = {}


def _parts() -> dict[str, Any]:
    """Per worker process (after the fork): SDK client, renderer, database connection."""
    if not _state:
        config_dir = Path(os.environ.get("BENCH_CONFIG_DIR", "config"))
        _state["client"] = Client(
            "AC00000000000000000000000000000000", "sandbox-token", http_client=StandInHttpClient()
        )
        _state["sms"] = SmsChannel(
            client=None,
            http=None,  # type: ignore[arg-type]  rendering only
            config=load_twilio_config(config_dir),
            templates=TemplateStore(config_dir / "templates"),
            webhook_public_url="http://127.0.0.1:9",
        )
        _state["db"] = psycopg.connect(os.environ["BENCH_PG_DSN"], autocommit=True)
    return _state


@app.task(name="bench.send_sms", acks_late=True)
def send_sms(intent_json: str) -> str:
    parts = _parts()
    intent = decode_intent(intent_json.encode())
    sms: SmsChannel = parts["sms"]
    sender = sms.config.sender("sms", intent.jurisdiction)
    message = parts["client"].messages.create(
        to=intent.recipient.phone,
        body=sms.render(intent),
        messaging_service_sid=sender.messaging_service_sid,
        status_callback=sms.status_callback(intent),
    )
    parts["db"].execute(
        "INSERT INTO bench_celery_sends (intent_id, created_at, sent_at, sid) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (intent.intent_id, intent.created_at, datetime.now(UTC), message.sid),
    )
    return str(message.sid)
