"""A synthetic loan book for the demo, tests and benchmarks: realistic, reproducible, fictional.

Mix: about 60% CN (zh-CN, CNY, Chinese names, Chinese mobile numbers), 35% US and 5% US-MA
(en-US, USD, 555-01xx numbers, which are reserved for fiction). Emails use example.com. Most
accounts sit on a day of the standard strategy where a step is due (so a small demo book does
something), the rest spread over -5..120 days past due. A few carry flags (opt-outs, disputes,
promises, bankruptcy, ...). The same (n, seed, as_of) always yields the same book.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

from dunning.intents import PostalAddress
from dunning.producers.accounts import Account

__all__ = ["synthetic_book"]

#: Days past due where the standard strategy has a step due.
_BUSY_DAYS = (-3, 0, 1, 2, 3, 5, 7, 8, 10, 14, 31, 34, 38, 40, 42, 50, 61, 63, 65, 77, 91)
_CN_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
_CN_GIVEN = ("伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰")
_CN_CITIES = (
    ("上海", "上海市", "200120", "浦东新区世纪大道{n}号"),
    ("北京", "北京市", "100020", "朝阳区建国路{n}号"),
    ("广州", "广东省", "510623", "天河区珠江新城华夏路{n}号"),
    ("深圳", "广东省", "518048", "福田区深南大道{n}号"),
    ("杭州", "浙江省", "310012", "西湖区文三路{n}号"),
)
_US_FIRST = ("James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda")
_US_LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis")
# (area code, zone, city, state, zip)
_US_PLACES = (
    ("202", "America/New_York", "Washington", "DC", "20001"),
    ("212", "America/New_York", "New York", "NY", "10001"),
    ("312", "America/Chicago", "Chicago", "IL", "60601"),
    ("303", "America/Denver", "Denver", "CO", "80202"),
    ("415", "America/Los_Angeles", "San Francisco", "CA", "94103"),
)
_MA_PLACE = ("617", "America/New_York", "Boston", "MA", "02108")
_STREETS = ("Elm St", "Maple Ave", "Oak St", "Washington Blvd", "Park Rd")


def _flags(rng: random.Random, as_of: date) -> dict[str, object]:
    flags: dict[str, object] = {}
    for name, share in (
        ("sms_opt_out", 0.03),
        ("email_opt_out", 0.03),
        ("disputed", 0.02),
        ("cease", 0.01),
        ("paid", 0.02),
        ("attorney_represented", 0.01),
        ("hardship", 0.01),
        ("bankrupt", 0.005),
        ("deceased", 0.003),
    ):
        if rng.random() < share:
            flags[name] = True
    if rng.random() < 0.02:
        flags["promise_to_pay_until"] = as_of + timedelta(days=rng.randint(0, 10))
    return flags


def _cn(rng: random.Random, index: int) -> dict[str, object]:
    city, region, postal, street = rng.choice(_CN_CITIES)
    return {
        "name": rng.choice(_CN_SURNAMES) + rng.choice(_CN_GIVEN),
        "phone": f"+861{rng.choice('3456789')}{rng.randrange(10**9):09d}",
        "email": f"cn.user{index}@example.com",
        "address": PostalAddress(
            lines=(street.format(n=rng.randint(1, 999)),),
            city=city,
            region=region,
            postal_code=postal,
            country="CN",
        ),
        "timezone": "Asia/Shanghai",
        "locale": "zh-CN",
        "jurisdiction": "CN",
        "currency": "CNY",
        "amount_due": Decimal(rng.randint(500, 80_000)) + Decimal(rng.randint(0, 99)) / 100,
    }


def _us(rng: random.Random, index: int, massachusetts: bool) -> dict[str, object]:
    area, zone, city, state, postal = _MA_PLACE if massachusetts else rng.choice(_US_PLACES)
    return {
        "name": f"{rng.choice(_US_FIRST)} {rng.choice(_US_LAST)}",
        "phone": f"+1{area}55501{rng.randrange(100):02d}",
        "email": f"us.user{index}@example.com",
        "address": PostalAddress(
            lines=(f"{rng.randint(1, 9999)} {rng.choice(_STREETS)}",),
            city=city,
            region=state,
            postal_code=postal,
            country="US",
        ),
        "timezone": zone,
        "locale": "en-US",
        "jurisdiction": "US-MA" if massachusetts else "US",
        "currency": "USD",
        "amount_due": Decimal(rng.randint(100, 15_000)) + Decimal(rng.randint(0, 99)) / 100,
    }


def synthetic_book(n: int, seed: int = 0, as_of: date | None = None) -> Iterator[Account]:
    """``n`` fictional accounts, generated lazily (a million cost no more memory than one)."""
    rng = random.Random(seed)
    day = as_of or date.today()
    for index in range(n):
        roll = rng.random()
        person = _cn(rng, index) if roll < 0.60 else _us(rng, index, massachusetts=roll > 0.95)
        dpd = rng.choice(_BUSY_DAYS) if rng.random() < 0.7 else rng.randint(-5, 120)
        due = day - timedelta(days=dpd)
        amount = person["amount_due"]
        assert isinstance(amount, Decimal)
        barred = dpd > 60 and rng.random() < 0.1
        yield Account(
            account_id=f"S{seed}-{index:08d}",
            person_id=f"P{seed}-{index:08d}",
            collector_role="first_party" if rng.random() < 0.7 else "third_party",
            principal=(amount * Decimal("0.9")).quantize(Decimal("0.01")),
            due_date=due,
            last_payment_date=due - timedelta(days=30) if rng.random() < 0.5 else None,
            statute_of_limitations=day - timedelta(days=1) if barred else None,
            **person,  # type: ignore[arg-type]  # built per jurisdiction above, types match
            **_flags(rng, day),  # type: ignore[arg-type]  # flag name -> bool/date
        )
