"""Cross-file wiring of the configuration: does every name one file gives exist where it points?

Each file loads on its own (``dunning.ops.checks``); these checks follow the names between them:

* template references: each strategy step's template has every part its channel renders, in
  every locale the book uses (``templates/<locale>/<channel>/<name>.<part>.j2``); every
  ``include``/``extends``/``import`` of a template names a file that exists; jurisdictions that
  get letters have the ``letter_cover`` email a letter without a postal address goes out with;
* jurisdictions: each jurisdiction the book uses has a rule pack, an ``[institution.<J>]``, an
  SMS and a voice sender when the strategy has SMS or voice steps, and an email sender name;
* compliance templates: every ``credit_bureau.notice_templates`` name of a pack exists, in each
  of the pack's locales, on at least one of its ``notice_channels`` (the gate waits for such a
  notice to have been sent, so a name that cannot be sent blocks reporting for good).

The other name lists of a pack (``lawyer_letter_templates``, ``legal_wording_templates``,
``permitted_after_cease``, ``credit_bureau.templates``) say which steps or templates a rule
applies to *if* they are used: a name there that matches no template and no step changes no
send, so it is listed in the check's detail rather than failed.

Locales the book uses: for every jurisdiction with a pack in compliance.toml, the locale of its
``[institution.<J>]`` in channels.toml (a sub-jurisdiction such as US-MA uses its country's, as
the channels do); with a book of accounts (``dunning config check --book FILE``), also every
(jurisdiction, locale) pair of its rows. Letters go only to jurisdictions with a law-firm
engagement (the others' letter intents dead-letter as ``no_law_firm_engagement`` by design), so
letter templates are required for those only.

Every problem names the file and the key (or the template path) at fault.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
from jinja2 import meta

from dunning.channels.letter.mail import COVER_TEMPLATE
from dunning.compliance.packs import Pack, PackSet
from dunning.errors import ConfigError
from dunning.intents import Channel
from dunning.producers.strategy import Strategy
from dunning.settings import Settings

__all__ = [
    "MESSAGE_PARTS",
    "Audience",
    "compliance_template_problems",
    "find_audience",
    "jurisdiction_problems",
    "template_reference_problems",
]

#: The parts each channel renders for one message (a missing one fails that send).
MESSAGE_PARTS: Mapping[Channel, tuple[str, ...]] = {
    Channel.SMS: ("txt",),
    Channel.VOICE: ("txt", "menu", "voicemail", "amount"),
    Channel.EMAIL: ("subject", "txt", "html"),
    Channel.LETTER: ("title", "meta", "facts", "body", "review", "signoff"),
    Channel.VISIT: ("txt",),  # the collectors' brief
    Channel.BUREAU: (),  # a bureau record renders no message
    Channel.LEGAL: (),  # a handover bag renders no message
}


@dataclass
class Audience:
    """Who the book contacts: locales per jurisdiction, and who gets letters."""

    locales: dict[str, set[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    letters: set[str] = field(default_factory=set)  # jurisdictions with a law-firm engagement

    def add(self, jurisdiction: str, locale: str) -> None:
        self.locales.setdefault(jurisdiction, set()).add(locale)

    def pairs(self) -> list[tuple[str, str]]:
        return sorted((j, loc) for j, locales in self.locales.items() for loc in locales)


def _country(jurisdiction: str) -> str:
    return jurisdiction.split("-", 1)[0]


def find_audience(
    settings: Settings, packs: PackSet, *, book: str | None = None, engagements: Iterable[str] = ()
) -> Audience:
    """The (jurisdiction, locale) pairs to check; see the module docstring."""
    from dunning.channels_toml import load_twilio_config

    twilio = load_twilio_config(settings.config_dir)
    audience = Audience()
    engaged = set(engagements)
    for jurisdiction in packs.jurisdictions():
        if jurisdiction in engaged or _country(jurisdiction) in engaged:
            audience.letters.add(jurisdiction)
        try:
            audience.add(jurisdiction, twilio.institution(jurisdiction).locale)
        except ConfigError:
            audience.locales.setdefault(jurisdiction, set())
            audience.problems.append(
                f"channels.toml: no [institution.{jurisdiction}] for jurisdiction {jurisdiction}, "
                "which has a pack in compliance.toml: its name, locale and callback number are "
                "unknown"
            )
    if book is not None:
        _add_book(audience, book, packs, engaged)
    return audience


def _add_book(audience: Audience, book: str, packs: PackSet, engaged: set[str]) -> None:
    from dunning.producers.sources import accounts_only, open_accounts

    known = set(packs.jurisdictions())
    missing: dict[str, str] = {}
    shown = _masked(book)
    # Bad rows are the evaluator's to report (with their line); here only good rows count.
    for account in accounts_only(open_accounts(book), lambda _bad: None):
        audience.add(account.jurisdiction, account.locale)
        if account.jurisdiction in engaged or _country(account.jurisdiction) in engaged:
            audience.letters.add(account.jurisdiction)
        if account.jurisdiction not in known:
            missing.setdefault(account.jurisdiction, account.account_id)
    for jurisdiction, account_id in sorted(missing.items()):
        audience.problems.append(
            f"{shown}: account {account_id} has jurisdiction {jurisdiction}, which has no pack "
            "in compliance.toml (every send to it would be refused)"
        )


def _masked(location: str) -> str:
    """A database URL without its password."""
    if "://" not in location or "@" not in location:
        return location
    scheme, rest = location.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


# --- template references -------------------------------------------------------------------


def _missing_parts(root: Path, locale: str, channel: Channel, name: str) -> list[str]:
    return [
        f"templates/{locale}/{channel.value}/{name}.{part}.j2"
        for part in MESSAGE_PARTS[channel]
        if not (root / locale / channel.value / f"{name}.{part}.j2").is_file()
    ]


def _step_channels(strategy: Strategy) -> set[Channel]:
    return {step.channel for variant in strategy.variants for step in variant.steps}


def template_reference_problems(
    templates: Path, strategy: Strategy, audience: Audience
) -> list[str]:
    """Strategy steps, includes and the letter cover whose template files do not exist."""
    needs: dict[tuple[str, Channel, str], list[str]] = {}  # (locale, channel, name) -> keys
    jurisdictions: dict[tuple[str, Channel, str], set[str]] = {}
    for jurisdiction, locale in audience.pairs():
        for variant in strategy.variants:
            for step in variant.steps:
                if step.channel is Channel.LETTER and jurisdiction not in audience.letters:
                    continue
                key = (locale, step.channel, step.template)
                where = f'[[variants.{variant.name}.steps]] id "{step.id}"'
                if where not in needs.setdefault(key, []):
                    needs[key].append(where)
                jurisdictions.setdefault(key, set()).add(jurisdiction)
    problems = []
    for (locale, channel, name), steps in sorted(needs.items()):
        missing = _missing_parts(templates, locale, channel, name)
        if missing:
            whom = ", ".join(sorted(jurisdictions[(locale, channel, name)]))
            problems.append(
                f'strategy.toml {", ".join(steps)} template "{name}": missing '
                f"{', '.join(missing)} ({channel.value} in {locale}, for {whom})"
            )
    if Channel.LETTER in _step_channels(strategy):
        cover = {loc for j, loc in audience.pairs() if j in audience.letters}
        for locale in sorted(cover):
            missing = _missing_parts(templates, locale, Channel.EMAIL, COVER_TEMPLATE)
            if missing:
                problems.append(
                    f"letter channel (a letter to a debtor without a postal address is emailed "
                    f"with the {COVER_TEMPLATE!r} template): missing {', '.join(missing)}"
                )
    return problems + include_problems(templates)


def include_problems(templates: Path) -> list[str]:
    """``include``, ``extends`` and ``import`` targets that are not files under ``templates``."""
    env = jinja2.Environment(autoescape=True)
    users: dict[str, list[str]] = {}  # missing target -> the files that include it
    for file in sorted(templates.rglob("*")):
        if not file.is_file():
            continue
        try:
            parsed = env.parse(file.read_text(encoding="utf-8"))
        except (jinja2.TemplateSyntaxError, UnicodeDecodeError):
            continue  # the templates check reports it, naming the line
        for target in meta.find_referenced_templates(parsed):
            if target is not None and not (templates / target).is_file():
                users.setdefault(target, []).append(file.relative_to(templates).as_posix())
    return [
        f"templates/{target} does not exist; included by "
        + ", ".join(f"templates/{user}" for user in by)
        for target, by in sorted(users.items())
    ]


# --- jurisdictions ----------------------------------------------------------------------------


def jurisdiction_problems(settings: Settings, strategy: Strategy, audience: Audience) -> list[str]:
    """Per jurisdiction: institution, SMS and voice senders, email sender name."""
    from dunning.channels.email_message import load_email_config
    from dunning.channels_toml import load_twilio_config

    twilio = load_twilio_config(settings.config_dir)
    channels = _step_channels(strategy)
    email = load_email_config(settings) if Channel.EMAIL in channels else None
    problems = list(audience.problems)
    for jurisdiction in sorted(audience.locales):
        for channel in (Channel.SMS, Channel.VOICE):
            if channel not in channels:
                continue
            try:
                twilio.sender(channel.value, jurisdiction)
            except ConfigError:
                table = f"[{channel.value}.senders.{jurisdiction}]"
                if jurisdiction[:2] != jurisdiction:
                    table += f" (nor [{channel.value}.senders.{jurisdiction[:2]}])"
                problems.append(
                    f"channels.toml: no {table}: strategy.toml has {channel.value} steps and "
                    f"the book has {jurisdiction} accounts"
                )
        if email is not None:
            try:
                email.from_name(jurisdiction)
            except ConfigError as exc:
                problems.append(f"{exc} (strategy.toml has email steps)")
    return problems


# --- compliance templates ---------------------------------------------------------------------


def _pack_locales(pack: Pack, packs: PackSet, audience: Audience) -> set[str]:
    """Locales of the pack's jurisdiction and of every jurisdiction that extends it."""
    heirs = {pack.jurisdiction}
    grew = True
    while grew:
        more = {p.jurisdiction for p in packs.packs if p.extends in heirs} - heirs
        heirs |= more
        grew = bool(more)
    return {loc for j in heirs for loc in audience.locales.get(j, set())}


def _known_names(templates: Path, strategy: Strategy) -> set[str]:
    names = {step.id for v in strategy.variants for step in v.steps}
    names |= {step.template for v in strategy.variants for step in v.steps}
    names |= {f.name.split(".", 1)[0] for f in templates.glob("*/*/*.j2")}
    return names


def compliance_template_problems(
    templates: Path, strategy: Strategy, packs: PackSet, audience: Audience
) -> tuple[list[str], list[str]]:
    """(problems, notes): notice templates that do not exist; rule-list names matching nothing."""
    problems: list[str] = []
    inert: dict[str, set[str]] = {}
    known = _known_names(templates, strategy)
    for index, pack in enumerate(packs.packs):
        where = f"compliance.toml pack[{index}] ({pack.version})"
        gate = pack.credit_bureau
        lists: dict[str, frozenset[str] | None] = {
            "lawyer_letter_templates": pack.lawyer_letter_templates,
            "legal_wording_templates": pack.legal_wording_templates,
            "permitted_after_cease": pack.permitted_after_cease,
            "credit_bureau.templates": gate.templates if gate else None,
        }
        for key, names in lists.items():
            for name in sorted((names or frozenset()) - known):
                inert.setdefault(name, set()).add(f"pack[{index}].{key}")
        if gate is None:
            continue
        channels = sorted(gate.notice_channels, key=lambda c: c.value)
        for locale in sorted(_pack_locales(pack, packs, audience)):
            for name in sorted(gate.notice_templates):
                missing = {c: _missing_parts(templates, locale, c, name) for c in channels}
                if all(missing.values()):
                    looked = "; ".join(
                        f"{c.value}: missing {', '.join(m)}"
                        if len(m) < len(MESSAGE_PARTS[c])
                        else f"no templates/{locale}/{c.value}/{name}.*.j2"
                        for c, m in missing.items()
                    )
                    problems.append(
                        f'{where} credit_bureau.notice_templates "{name}": no complete '
                        f"{' or '.join(c.value for c in channels)} template in {locale} ({looked})"
                    )
    notes = [f"{name} ({', '.join(sorted(keys))})" for name, keys in sorted(inert.items())]
    return problems, notes
