"""Signed, expiring subscription tokens, and the secret key that signs them.

A token says which subscriber it is for, a keyed fingerprint of their address, what it lets its
holder do and when it was made, signed with HMAC-SHA256 under the secret key: a confirmation
token cannot unsubscribe anyone, and a token minted for an address stops working if the
address changes. The address itself is not in the token: links end up in logs and proxies, and
base64 is not secrecy.

Tokens are minted compact: those fields packed in 19 to 26 bytes and one HMAC of them cut to
128 bits, 47 to 56 characters of URL-safe base64 without dots, in a third of the time
itsdangerous took (a digest mints two for every recipient). Links mailed before carry
itsdangerous's form (a JSON payload, a timestamp and a signature, salted per purpose, joined by
dots); those are still read, so they keep working until they expire.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import Engine, select

from syndicate.store.schema import state
from syndicate.store.sql import upsert

log = logging.getLogger(__name__)

SECRET_STATE_NAME = "secret_key"  # noqa: S105 (the name of the state row, not a secret)
SALT_PREFIX = "syndicate.subscribers."
FINGERPRINT_BYTES = 12
# A compact token: version, purpose, seconds since the epoch, fingerprint; then the subscriber's
# pk in as few bytes as it needs (1 to 8); then the signature.
COMPACT_VERSION = 2  # the itsdangerous form, never marked, is the first
_COMPACT_HEAD = struct.Struct(f">BBI{FINGERPRINT_BYTES}s")
SIGNATURE_BYTES = 16  # HMAC-SHA256 cut to 128 bits
PK_BYTES = 8


class Purpose(StrEnum):
    """What a token lets its holder do."""

    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


# A purpose's number in compact tokens; never change one, or tokens mailed before change meaning.
PURPOSE_CODES = {Purpose.CONFIRM: 1, Purpose.UNSUBSCRIBE: 2, Purpose.PREFERENCES: 3}
_PURPOSES = {code: purpose for purpose, code in PURPOSE_CODES.items()}


Reason = Literal["forged", "expired", "wrong purpose", "stale"]


class TokenError(Exception):
    """A token that must not be honoured; `reason` says why."""

    def __init__(self, reason: Reason) -> None:
        """Refuse a token for `reason`."""
        super().__init__(reason)
        self.reason: Reason = reason


@dataclass(frozen=True, slots=True)
class Claim:
    """What a valid token says: which subscriber, and a fingerprint of their address then."""

    purpose: Purpose
    pk: int
    fingerprint: str


class _ClockedSigner(TimestampSigner):
    """A timestamp signer whose clock can be set, so expiry is testable without sleeping."""

    def __init__(self, *args: Any, clock: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        """Now, by this signer's clock."""
        return int(self._clock())


class Tokens:
    """Mints and reads the tokens of every purpose with one secret key."""

    def __init__(self, secret: str, *, clock: Callable[[], float] = time.time) -> None:
        """Sign with `secret`; `clock` (seconds since the epoch) dates new tokens and checks age."""
        if not secret:
            raise ValueError("an empty secret key signs nothing")
        self._secret = secret.encode()
        self._clock = clock
        # Its own key for signing compact tokens, so no signature is ever a fingerprint.
        self._signing_key = hmac.digest(self._secret, b"compact token", "sha256")
        # The form of tokens mailed before the compact one: read, never minted.
        self._serializers = {
            purpose: URLSafeTimedSerializer(
                secret,
                salt=SALT_PREFIX + purpose.value,
                signer=_ClockedSigner,
                signer_kwargs={"digest_method": hashlib.sha256, "clock": clock},
            )
            for purpose in Purpose
        }

    def fingerprint(self, email: str) -> str:
        """A keyed digest of `email`: binds a token to an address without revealing it."""
        return self._address_digest(email).hex()

    def _address_digest(self, email: str) -> bytes:
        """The fingerprint of `email` as bytes."""
        return hmac.digest(self._secret, b"address:" + email.encode(), "sha256")[:FINGERPRINT_BYTES]

    def mint(self, purpose: Purpose, pk: int, email: str) -> str:
        """A token letting its holder do `purpose` for subscriber `pk` while it has `email`."""
        if not 0 <= pk < 2 ** (8 * PK_BYTES):
            raise ValueError(f"no token for a subscriber pk of {pk}")
        head = (COMPACT_VERSION, PURPOSE_CODES[purpose], int(self._clock()))
        payload = _COMPACT_HEAD.pack(*head, self._address_digest(email)) + pk.to_bytes(
            max(1, (pk.bit_length() + 7) // 8), "big"
        )
        signature = hmac.digest(self._signing_key, payload, "sha256")[:SIGNATURE_BYTES]
        return base64.urlsafe_b64encode(payload + signature).rstrip(b"=").decode("ascii")

    def read(self, purpose: Purpose, token: str, *, max_age: int) -> Claim:
        """The claim of a token for `purpose` at most `max_age` seconds old, else TokenError."""
        if "." not in token:  # compact; the itsdangerous form always has dots
            return self._read_compact(purpose, token, max_age)
        try:
            payload = self._serializers[purpose].loads(token, max_age=max_age)
        except SignatureExpired:
            raise TokenError("expired") from None
        except BadSignature:
            raise TokenError(self._why_refused(purpose, token)) from None
        match payload:
            case [int(pk), str(fingerprint)] if not isinstance(pk, bool):
                return Claim(purpose, pk, fingerprint)
        # Signed by us but not in our shape: only a change of format could do this.
        raise TokenError("forged")

    def owns(self, claim: Claim, email: str) -> bool:
        """Whether `claim` was minted for the address `email` (not for one it had before)."""
        return hmac.compare_digest(claim.fingerprint, self.fingerprint(email))

    def _read_compact(self, purpose: Purpose, token: str, max_age: int) -> Claim:
        """The claim of a compact token, checked as `read` promises."""
        try:
            data = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise TokenError("forged") from None
        payload, signature = data[:-SIGNATURE_BYTES], data[-SIGNATURE_BYTES:]
        expected = hmac.digest(self._signing_key, payload, "sha256")[:SIGNATURE_BYTES]
        # The signature is checked first, in constant time; then that the token is spelled as
        # minted (base64 can spell the same bytes several ways), so a changed letter is refused.
        if not (
            hmac.compare_digest(signature, expected)
            and _COMPACT_HEAD.size < len(payload) <= _COMPACT_HEAD.size + PK_BYTES
            and base64.urlsafe_b64encode(data).rstrip(b"=") == token.encode("ascii")
        ):
            raise TokenError("forged")
        version, code, issued, fingerprint = _COMPACT_HEAD.unpack_from(payload)
        if version != COMPACT_VERSION or code not in _PURPOSES:
            raise TokenError("forged")  # signed by us, so only a later format could do this
        if _PURPOSES[code] is not purpose:
            raise TokenError("wrong purpose")
        age = int(self._clock()) - issued
        if not 0 <= age <= max_age:  # as itsdangerous: a token from the future is expired too
            raise TokenError("expired")
        pk = int.from_bytes(payload[_COMPACT_HEAD.size :], "big")
        return Claim(purpose, pk, fingerprint.hex())

    def _why_refused(self, purpose: Purpose, token: str) -> Reason:
        for other, serializer in self._serializers.items():
            if other is not purpose:
                try:
                    serializer.loads(token)
                except BadSignature:
                    continue
                return "wrong purpose"
        return "forged"


def secret_key(engine: Engine, configured: str) -> str:
    """The configured key, else one generated once and kept in the store for every process."""
    if configured:
        return configured
    with engine.begin() as connection:
        # Insert-if-absent, then read: two processes starting together agree on one key.
        upsert(
            connection,
            state,
            [{"name": SECRET_STATE_NAME, "value": secrets.token_urlsafe(48)}],
            ["name"],
            update=False,
        )
        value = connection.execute(
            select(state.c.value).where(state.c.name == SECRET_STATE_NAME)
        ).scalar_one()
    database = engine.url.render_as_string(hide_password=True)
    if database not in _warned:  # once per process (and database), not at every use
        _warned.add(database)
        log.warning(
            'secret_key_unset setting="[security] secret_key" env=SYNDICATE_SECURITY__SECRET_KEY '
            'reason="security.secret_key is not set; using a key generated once and kept in the '
            'database. Set SYNDICATE_SECURITY__SECRET_KEY in production"'
        )
    return str(value)


_warned: set[str] = set()  # the databases whose generated key this process has warned about
