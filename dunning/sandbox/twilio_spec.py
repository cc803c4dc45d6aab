"""Form validation for the Twilio stand-in, driven by Twilio's own OpenAPI description.

``twilio_oai_subset.json`` is the Messages and Calls part of ``twilio_api_v2010.json`` (public
twilio-oai repository, MIT licence, kept in the file). A create request is rejected, with the
code Twilio answers, when it lacks a required field, sends a field the operation does not
define, sends a value of the wrong type or outside an enum, or lacks one of the alternatives the
API requires (From|MessagingServiceSid, Body|MediaUrl|ContentSid, Url|Twiml|ApplicationSid).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["SpecViolation", "response_fields", "validate_create"]

MESSAGES_PATH = "/2010-04-01/Accounts/{AccountSid}/Messages.json"
CALLS_PATH = "/2010-04-01/Accounts/{AccountSid}/Calls.json"

#: Alternatives the spec cannot express: (fields, one of which is needed, code, message).
_ONE_OF: dict[str, list[tuple[tuple[str, ...], int, str]]] = {
    MESSAGES_PATH: [
        (("From", "MessagingServiceSid"), 21603, "A 'From' phone number is required."),
        (("Body", "MediaUrl", "ContentSid"), 21602, "Message body is required."),
    ],
    CALLS_PATH: [
        (("Url", "Twiml", "ApplicationSid"), 21205, "Url parameter is required."),
    ],
}
_REQUIRED_CODES = {"To": 21604, "From": 21603}
_BOOLEANS = {"true", "false", "True", "False"}


@dataclass(frozen=True, slots=True)
class SpecViolation:
    """Why a request was refused: the Twilio error code and message (HTTP 400)."""

    code: int
    message: str


@cache
def _spec() -> dict[str, Any]:
    text = resources.files("dunning.sandbox").joinpath("twilio_oai_subset.json").read_text("utf-8")
    spec: dict[str, Any] = json.loads(text)
    return spec


def response_fields(schema: str) -> list[str]:
    """Property names of a response schema (``api.v2010.account.message`` or ``...call``)."""
    fields: list[str] = _spec()["schemas"][schema]["properties"]
    return fields


def _enum_of(prop: dict[str, Any]) -> list[str] | None:
    if "enum" in prop:
        values: list[str] = prop["enum"]
        return values
    ref = prop.get("$ref")
    if ref:
        values = _spec()["schemas"][ref.rsplit("/", 1)[-1]]["enum"]
        return values
    return None


def _check_value(name: str, prop: dict[str, Any], value: str) -> SpecViolation | None:
    kind = prop.get("type")
    bad = SpecViolation(20001, f"Invalid value {value!r} for parameter {name}.")
    if kind == "integer":
        try:
            int(value)
        except ValueError:
            return bad
    elif kind == "number":
        try:
            float(value)
        except ValueError:
            return bad
    elif kind == "boolean" and value not in _BOOLEANS:
        return bad
    allowed = _enum_of(prop)
    if allowed is not None and value not in allowed:
        return bad
    return None


def validate_create(path: str, form: dict[str, list[str]]) -> SpecViolation | None:
    """Check one create request's form (every value of every field) against the spec."""
    operation = _spec()["paths"][path]["post"]["form"]
    properties: dict[str, Any] = operation["properties"]
    unknown = sorted(set(form) - set(properties))
    if unknown:
        return SpecViolation(20001, f"Unknown parameter(s): {', '.join(unknown)}.")
    for name in operation["required"]:
        if not any(v.strip() for v in form.get(name, [])):
            code = _REQUIRED_CODES.get(name, 20001)
            return SpecViolation(code, f"A '{name}' parameter is required.")
    for fields, code, message in _ONE_OF.get(path, []):
        if not any(any(v.strip() for v in form.get(f, [])) for f in fields):
            return SpecViolation(code, message)
    for name, values in form.items():
        prop = properties[name]
        if prop.get("type") != "array" and len(values) > 1:
            return SpecViolation(20001, f"Parameter {name} given {len(values)} times.")
        item = prop.get("items", {}) if prop.get("type") == "array" else prop
        for value in values:
            violation = _check_value(name, item, value)
            if violation is not None:
                return violation
    return None
