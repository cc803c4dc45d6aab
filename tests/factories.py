"""Builders for test data: one valid intent per channel, overridable field by field."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from dunning.account_facts import AccountFacts
from dunning.intents import (
    Channel,
    ContactIntent,
    PostalAddress,
    Recipient,
    Stage,
    TemplateRef,
    make_intent_id,
)

#: The facts a bureau intent carries unless a test gives its own.
BUREAU_FACTS = AccountFacts("first_party", "installment", Decimal("5000.00"), date(2026, 8, 1))
T0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, 21:00 the day before in NY


def make_intent(channel: Channel = Channel.SMS, **overrides: Any) -> ContactIntent:
    account = overrides.pop("account_id", f"acct-{uuid.uuid4().hex[:8]}")
    step = overrides.pop("step", f"early.{channel.value}.d1")
    jurisdiction = overrides.pop("jurisdiction", "CN")
    locale = "zh-CN" if jurisdiction == "CN" else "en-US"
    created = overrides.pop("created_at", T0)
    base = ContactIntent(
        intent_id=make_intent_id(account, step, date(2026, 11, 28)),
        account_id=account,
        person_id=f"person-{account}",
        debt_id=f"debt-{account}",
        jurisdiction=jurisdiction,
        stage=Stage.EARLY,
        channel=channel,
        step=step,
        template=TemplateRef(name="early_reminder", locale=locale),
        recipient=Recipient(
            name="张三" if locale == "zh-CN" else "Jane Doe",
            phone="+8613800138000" if jurisdiction == "CN" else "+12025550143",
            email="zhang.san@example.com",
            postal_address=PostalAddress(
                lines=("浦东新区世纪大道100号",), city="上海", postal_code="200120", country="CN"
            ),
        ),
        timezone="Asia/Shanghai" if jurisdiction == "CN" else "America/New_York",
        amount_due=Decimal("1234.50"),
        currency="CNY" if jurisdiction == "CN" else "USD",
        days_past_due=5,
        expires_at=created + timedelta(days=2),
        strategy="standard",
        variant="champion",
        created_at=created,
        trace_id=uuid.uuid4().hex,
        facts=BUREAU_FACTS if channel is Channel.BUREAU else None,
    )
    return dataclasses.replace(base, **overrides)
