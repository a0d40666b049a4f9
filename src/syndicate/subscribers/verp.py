"""VERP: an envelope sender per message that names its subscriber and edition, signed.

With `[mail] bounce_address` set to `bounces@news.example`, the message to subscriber 42 of
edition daily-en-2026-11-20 leaves with the envelope sender `bounces+TOKEN@news.example`. A
bounce comes back to that address whatever the report inside says, so reading the token
attributes it. The token is lower-case base32 (relays may fold a local part's case): the
subscriber's pk, the edition (kind, language, date) or the confirmation mail, and an HMAC of
them under the secret key cut to 80 bits, so nobody can forge a bounce for someone else. It
keeps the local part within the 64 octets SMTP allows.
"""

from __future__ import annotations

import base64
import hmac
import re
import struct
from dataclasses import dataclass
from datetime import date

from syndicate.domain.periods import KINDS

MAIL_REF_HEADER = "X-Syndicate-Mail"  # a message's token again, for reports that quote headers
CONFIRMATION = "confirmation"  # the mail that is no edition: a subscriber's confirmation link
SIGNATURE_BYTES = 10
EPOCH = date(2000, 1, 1)
LANGUAGE_CODES = ("en", "ar", "fa")  # a language's number in tokens; only ever append
# Kind 0 is the confirmation mail; the digest kinds follow in their table's order.
_KIND_CODES: dict[str, int] = {CONFIRMATION: 0} | {
    kind: number + 1 for number, kind in enumerate(KINDS)
}
_KINDS = {code: kind for kind, code in _KIND_CODES.items()}
_HEAD = struct.Struct(">BBH")  # kind, language, days since EPOCH
_EDITION = re.compile(r"(?P<kind>[a-z]+)-(?P<language>[a-z]{2,3})-(?P<day>\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True, slots=True)
class MailRef:
    """Which mail a message was: to subscriber `pk`, of edition `edition_id` or the confirmation."""

    pk: int
    edition_id: str  # "daily-en-2026-11-20", or "confirmation"


class Verp:
    """Mints and reads the signed tokens of envelope senders under one secret key."""

    def __init__(self, secret: str) -> None:
        """Sign with `secret` (the same secret key subscription tokens use)."""
        if not secret:
            raise ValueError("an empty secret key signs nothing")
        self._key = hmac.digest(secret.encode(), b"verp token", "sha256")

    def token(self, ref: MailRef) -> str:
        """The token naming `ref` (lower-case letters and digits)."""
        payload = _pack(ref)
        signature = hmac.digest(self._key, payload, "sha256")[:SIGNATURE_BYTES]
        return base64.b32encode(payload + signature).decode("ascii").rstrip("=").lower()

    def read(self, token: str) -> MailRef | None:
        """What `token` names, or None when it is not one of ours (forged, cut or garbled)."""
        text = token.strip().upper()
        try:
            raw = base64.b32decode(text + "=" * (-len(text) % 8))
        except (ValueError, TypeError):
            return None
        payload, signature = raw[:-SIGNATURE_BYTES], raw[-SIGNATURE_BYTES:]
        expected = hmac.digest(self._key, payload, "sha256")[:SIGNATURE_BYTES]
        if len(payload) <= _HEAD.size or not hmac.compare_digest(signature, expected):
            return None
        return _unpack(payload)

    def sender(self, bounce_address: str, ref: MailRef) -> str:
        """The envelope sender for `ref`: `bounce_address` with `+token` added to its local part."""
        local, _, domain = bounce_address.rpartition("@")
        return f"{local}+{self.token(ref)}@{domain}"

    def read_address(self, bounce_address: str, address: str) -> MailRef | None:
        """What the VERP `address` (a bounce's envelope recipient) names, if it is one of ours."""
        local, _, domain = bounce_address.rpartition("@")
        their_local, _, their_domain = address.strip().strip("<>").rpartition("@")
        prefix = f"{local}+"
        if their_domain.lower() != domain.lower() or not their_local.lower().startswith(
            prefix.lower()
        ):
            return None
        return self.read(their_local[len(prefix) :])


def _pack(ref: MailRef) -> bytes:
    if ref.pk < 0:
        raise ValueError(f"no token for a subscriber pk of {ref.pk}")
    if ref.edition_id == CONFIRMATION:
        head = _HEAD.pack(0, 0, 0)
    else:
        found = _EDITION.fullmatch(ref.edition_id)
        if found is None or found["kind"] not in _KIND_CODES:
            raise ValueError(f"{ref.edition_id!r} is not an edition id")
        days = (date.fromisoformat(found["day"]) - EPOCH).days
        head = _HEAD.pack(_KIND_CODES[found["kind"]], LANGUAGE_CODES.index(found["language"]), days)
    return head + ref.pk.to_bytes(max(1, (ref.pk.bit_length() + 7) // 8), "big")


def _unpack(payload: bytes) -> MailRef | None:
    kind_code, language_code, days = _HEAD.unpack(payload[: _HEAD.size])
    pk = int.from_bytes(payload[_HEAD.size :], "big")
    kind = _KINDS.get(kind_code)
    if kind is None or language_code >= len(LANGUAGE_CODES):
        return None
    if kind == CONFIRMATION:
        return MailRef(pk, CONFIRMATION)
    day = date.fromordinal(EPOCH.toordinal() + days)
    return MailRef(pk, f"{kind}-{LANGUAGE_CODES[language_code]}-{day.isoformat()}")
