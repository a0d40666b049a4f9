"""Reading a webhook's JSON: fields by path, every fault a 400 that names the field."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from syndicate.feedback.model import Clues
from syndicate.subscribers.verp import MAIL_REF_HEADER

MAX_ADDRESS = 320  # the longest address SMTP allows, and the store's column
# Characters no address, id or diagnostic carries: C0 controls, DEL, and lone surrogates
# (JSON's "\ud800" escapes one into a str, which no database can store).
_UNSTORABLE = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


class Malformed(Exception):
    """The request's body cannot be read as the provider's events; the message names the fault."""


def parse_json(body: bytes, what: str = "body") -> Any:
    """`body` as JSON, or Malformed naming where it fails (NaN and Infinity are not JSON)."""
    try:
        return json.loads(body, parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise Malformed(f"{what}: not JSON: {error}") from None
    except (RecursionError, ValueError) as error:  # nesting too deep, a number too long
        raise Malformed(f"{what}: not JSON: {error}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def mapping(value: Any, path: str) -> Mapping[str, Any]:
    """`value` when it is a JSON object, else Malformed naming `path`."""
    if not isinstance(value, Mapping):
        raise Malformed(f"{path}: expected an object, got {_kind(value)}")
    return value


def items(value: Any, path: str) -> list[Any]:
    """`value` when it is a JSON array, else Malformed naming `path`."""
    if not isinstance(value, list):
        raise Malformed(f"{path}: expected an array, got {_kind(value)}")
    return value


def text(container: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> str:
    """The string at `key` (numbers read as text), cleaned of what no store keeps; "" if absent."""
    value = container.get(key)
    if value is None:
        if required:
            raise Malformed(f"{path}.{key}: missing")
        return ""
    return text_value(value, f"{path}.{key}")


def text_value(value: Any, path: str) -> str:
    """`value` (a string, or a number read as text) on one line, without control characters."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Malformed(f"{path}: expected a string, got {_kind(value)}")
    return " ".join(_UNSTORABLE.sub(" ", str(value)).split())


def address(container: Mapping[str, Any], key: str, path: str) -> str:
    """The recipient's address at `key`: present, at most 320 characters, one word."""
    return address_value(container.get(key), f"{path}.{key}")


def address_value(value: Any, path: str) -> str:
    """`value` as a recipient's address: a string of one word, at most 320 characters."""
    if value is None:
        raise Malformed(f"{path}: missing")
    found = text_value(value, path)
    if not found or len(found) > MAX_ADDRESS or " " in found:
        raise Malformed(f"{path}: not an email address")
    return found


def moment(container: Mapping[str, Any], key: str, path: str, default: datetime) -> datetime:
    """The time at `key` (ISO 8601, or seconds since 1970), `default` when it is absent."""
    value = container.get(key)
    if value is None or value == "":
        return default
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        if isinstance(value, str):
            if re.fullmatch(r"\d+(\.\d+)?", value):
                return datetime.fromtimestamp(float(value), UTC)
            found = datetime.fromisoformat(value)
            # In UTC here, as the store keeps it: year 1 at +01:00 is before year 1 in UTC.
            return (found if found.tzinfo else found.replace(tzinfo=UTC)).astimezone(UTC)
        raise TypeError
    except (TypeError, ValueError, OverflowError, OSError):
        raise Malformed(f"{path}.{key}: not a time: {str(value)[:40]!r}") from None


def message_id(value: str) -> str:
    """A Message-ID as the ledger stores it, "<id@domain>" (some providers drop the brackets)."""
    value = value.strip()
    if value and not value.startswith("<"):
        return f"<{value}>"
    return value


def header_clues(headers: Mapping[str, str]) -> Clues:
    """The clues in the original message's headers (names in any case): our token, Message-ID."""
    lowered = {name.lower(): value for name, value in headers.items()}
    return Clues(
        mail_token=lowered.get(MAIL_REF_HEADER.lower(), "").strip(),
        message_id=message_id(lowered.get("message-id", "")),
    )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", str: "a string",
            list: "an array", dict: "an object"}.get(type(value), type(value).__name__)  # fmt: skip
