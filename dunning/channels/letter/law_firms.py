"""Law-firm engagements: which contracted firm issues lawyer letters in which jurisdiction.

``config/law_firms.toml`` holds one ``[engagements.<JURISDICTION>]`` table per jurisdiction
(``CN``, ``US``, ``US-MA``...). A letter is issued only under a configured engagement: the letter
carries the firm's registered name, the lawyer's name and licence number, the firm's file number,
the firm's signature and seal images and the engagement record (docs/compliance.md, "Lawyer
letters"). Dunning never invents a lawyer: a jurisdiction without an engagement is refused per
intent with reason ``no_law_firm_engagement``.

A sub-jurisdiction (``US-MA``) falls back to its country (``US``) when it has no table of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dunning.errors import ConfigError, PermanentChannelError
from dunning.intents import ContactIntent
from dunning.toml_files import read_toml

__all__ = ["LawFirmEngagement", "LawFirms", "file_number"]

_REQUIRED = (
    "firm_name",
    "lawyer_name",
    "licence_number",
    "file_prefix",
    "engagement_id",
    "creditor_name",
    "contact_phone",
    "contact_email",
    "signature_image",
    "seal_image",
)
_OPTIONAL = ("firm_address", "creditor_service", "basis_of_claim", "review_record")


@dataclass(frozen=True, slots=True)
class LawFirmEngagement:
    """One contracted firm issuing letters for one jurisdiction on behalf of the creditor.

    ``attorney_reviewed`` true means a recorded attorney review exists per letter
    (``review_record`` names the record); false prints the US disclaimer that no attorney has
    reviewed the account. Image paths are absolute (resolved against the config file's folder).
    """

    jurisdiction: str
    firm_name: str
    lawyer_name: str
    licence_number: str
    file_prefix: str
    engagement_id: str
    creditor_name: str
    contact_phone: str
    contact_email: str
    signature_image: Path
    seal_image: Path
    attorney_reviewed: bool = False
    firm_address: str = ""
    creditor_service: str = ""
    basis_of_claim: str = ""
    review_record: str = ""
    #: Documents the lender supplies for a legal handover (docs/legal.md, "Legal handover").
    handover_documents: tuple[str, ...] = ("contract",)


def _documents(where: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ("contract",)
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{where}: handover_documents must be a list of names")
    return tuple(value)


def _engagement(jurisdiction: str, table: Mapping[str, Any], base: Path) -> LawFirmEngagement:
    where = f"law firm engagement {jurisdiction!r}"
    missing = [key for key in _REQUIRED if not str(table.get(key, "")).strip()]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")
    known = {*_REQUIRED, *_OPTIONAL, "attorney_reviewed", "handover_documents"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    reviewed = table.get("attorney_reviewed", False)
    if not isinstance(reviewed, bool):
        raise ConfigError(f"{where}: attorney_reviewed must be true or false")
    if reviewed and not str(table.get("review_record", "")).strip():
        raise ConfigError(f"{where}: attorney_reviewed = true needs a review_record")
    images = {}
    for key in ("signature_image", "seal_image"):
        path = Path(str(table[key]))
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise ConfigError(f"{where}: {key} {path} does not exist")
        images[key] = path
    text = {k: str(table.get(k, "")).strip() for k in (*_REQUIRED, *_OPTIONAL)}
    text.update(dict.fromkeys(images, ""))
    return LawFirmEngagement(
        jurisdiction=jurisdiction,
        firm_name=text["firm_name"],
        lawyer_name=text["lawyer_name"],
        licence_number=text["licence_number"],
        file_prefix=text["file_prefix"],
        engagement_id=text["engagement_id"],
        creditor_name=text["creditor_name"],
        contact_phone=text["contact_phone"],
        contact_email=text["contact_email"],
        signature_image=images["signature_image"],
        seal_image=images["seal_image"],
        attorney_reviewed=reviewed,
        firm_address=text["firm_address"],
        creditor_service=text["creditor_service"],
        basis_of_claim=text["basis_of_claim"],
        review_record=text["review_record"],
        handover_documents=_documents(where, table.get("handover_documents")),
    )


@dataclass(frozen=True)
class LawFirms:
    """The configured engagements, by jurisdiction."""

    engagements: Mapping[str, LawFirmEngagement]

    @classmethod
    def load(cls, path: Path) -> LawFirms:
        """Read ``law_firms.toml``; raises ConfigError naming the file and the fault."""
        data = read_toml(path)
        tables = data.get("engagements", {})
        if not isinstance(tables, dict):
            raise ConfigError(f"{path}: [engagements] must be a table of tables")
        found: dict[str, LawFirmEngagement] = {}
        for jurisdiction, table in tables.items():
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: engagements.{jurisdiction} must be a table")
            found[jurisdiction] = _engagement(jurisdiction, table, path.parent)
        return cls(engagements=found)

    def for_jurisdiction(self, jurisdiction: str) -> LawFirmEngagement:
        """The engagement for ``jurisdiction`` (or its country); never a guess.

        Raises PermanentChannelError ``no_law_firm_engagement`` when none is configured.
        """
        for key in (jurisdiction, jurisdiction.split("-", 1)[0]):
            if key in self.engagements:
                return self.engagements[key]
        raise PermanentChannelError(
            "no_law_firm_engagement", provider_code="no_law_firm_engagement"
        )


def file_number(engagement: LawFirmEngagement, intent: ContactIntent) -> str:
    """The firm's file number for this letter: prefix, year, 10 hex digits of the intent id.

    Deterministic, so a retried or re-rendered letter keeps its number; the year is the
    intent's creation year in the debtor's time zone.
    """
    year = intent.created_at.astimezone(intent.zone).year
    digest = hashlib.sha256(f"{engagement.engagement_id}\x1f{intent.intent_id}".encode())
    return f"{engagement.file_prefix}-{year}-{digest.hexdigest()[:10].upper()}"
