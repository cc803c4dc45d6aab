"""How a letter's recipient block is written: Chinese order for domestic Chinese post.

A letter posted within China is addressed from the largest place to the smallest (省, 市, 区,
street), the postal code on its own line, the name last with 收, and no country: ``CN`` on a
domestic envelope is noise a sorting office does not read (GB/T 10088 envelope layout). Every
other letter keeps the Western order: name, street lines, city with region and postal code,
country.
"""

from __future__ import annotations

from dunning.intents import PostalAddress

__all__ = ["recipient_lines"]

# Endings that already name the level of a place; a bare city name (南京) gets 市.
_CITY_ENDINGS = ("市", "州", "盟", "地区", "区", "县")


def _city(city: str) -> str:
    return city if city.endswith(_CITY_ENDINGS) else f"{city}市"


def _chinese(name: str, address: PostalAddress) -> tuple[str, ...]:
    city = _city(address.city)
    region = address.region
    # Municipalities (上海市 上海) name the city as the province: once is enough.
    place = city if not region or region in (city, address.city) else f"{region}{city}"
    street = "".join(address.lines)
    return (f"邮政编码：{address.postal_code}", f"{place}{street}", f"{name} 收")


def recipient_lines(locale: str, name: str, address: PostalAddress | None) -> tuple[str, ...]:
    """The recipient block of a letter in ``locale`` (the name alone for an emailed letter)."""
    if address is None:
        return (name,)
    if address.country == "CN" and locale.startswith("zh"):
        return _chinese(name, address)
    city = " ".join(x for x in (address.city, address.region, address.postal_code) if x)
    return (name, *address.lines, city, address.country)
