"""Request-body parsing and DRF-style field validation."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from typing import Any, Literal

import orjson

from bulkops.sim.replies import Reply, detail

__all__ = [
    "BLANK",
    "INVALID_UUID",
    "NULL",
    "REQUIRED",
    "FieldSpec",
    "asset_tag_change",
    "check_fields",
    "is_uuid",
    "parse_body",
]

REQUIRED = "This field is required."
NULL = "This field may not be null."
BLANK = "This field may not be blank."
INVALID_UUID = "Enter a valid UUID."
NOT_BOOL = "Must be a valid boolean."
NOT_STRING = "Not a valid string."

Kind = Literal["bool", "str", "pin6", "object"]
#: field -> (kind, required)
FieldSpec = Mapping[str, tuple[Kind, bool]]

_PIN = re.compile(r"\d{6}")


def is_uuid(value: object) -> bool:
    """Whether `value` is a string DRF's UUIDField would accept."""
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def asset_tag_change(
    body: Mapping[str, Any], changes: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    """A PATCH's ``asset_tag`` (device or ADE record): ``null`` clears it, ``""`` is refused."""
    if "asset_tag" not in body:
        return
    v = body["asset_tag"]
    if v is None:
        changes["asset_tag"] = ""
    elif not isinstance(v, str):
        errors["asset_tag"] = [NOT_STRING]
    elif v == "":
        errors["asset_tag"] = [BLANK]
    else:
        changes["asset_tag"] = v


def parse_body(raw: bytes, content_type: str) -> tuple[Any, Reply | None]:
    """Decode a JSON body (empty → `{}`); a bad media type is 415, bad JSON 400."""
    if not raw.strip():
        return {}, None
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        return None, detail(415, f'Unsupported media type "{content_type}" in request.')
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError:
        pass
    try:  # DRF words the error with Python's json module; reproduce its message
        return json.loads(raw), None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, detail(400, f"JSON parse error - {exc}")


def not_a_dict(body: object) -> dict[str, list[str]] | None:
    """DRF's error for a body that is not a JSON object."""
    if isinstance(body, dict):
        return None
    kind = {list: "list", str: "str", int: "int", float: "float", bool: "bool"}.get(
        type(body), "NoneType" if body is None else type(body).__name__
    )
    return {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}


def check_fields(body: Mapping[str, Any], spec: FieldSpec) -> dict[str, list[str]]:
    """Validate `body` against `spec`; unknown keys are ignored, as DRF serializers do."""
    errors: dict[str, list[str]] = {}
    for name, (kind, required) in spec.items():
        if name not in body:
            if required:
                errors[name] = [REQUIRED]
            continue
        value = body[name]
        message = _check_one(kind, value)
        if message is not None:
            errors[name] = [message]
    return errors


def _check_one(kind: Kind, value: object) -> str | None:
    if value is None:
        return NULL
    if kind == "bool":
        return None if isinstance(value, bool) else NOT_BOOL
    if kind == "object":
        return (
            None
            if isinstance(value, dict)
            else (f'Expected a dictionary of items but got type "{type(value).__name__}".')
        )
    if not isinstance(value, str):
        return NOT_STRING
    if kind == "pin6" and not _PIN.fullmatch(value):
        return "Ensure this field is a 6-digit PIN."
    return None
