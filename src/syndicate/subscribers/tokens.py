"""Signed, expiring subscription tokens, and the secret key that signs them.

A token is an itsdangerous URL-safe timed signature (HMAC-SHA256) over the subscriber's pk and
a keyed fingerprint of the address, salted per purpose, so that a confirmation token cannot
unsubscribe anyone and a token minted for an address stops working if the address changes.
The address itself is not in the token: links end up in logs and proxies, and base64 is not
secrecy.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
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


class Purpose(StrEnum):
    """What a token lets its holder do."""

    CONFIRM = "confirm"
    UNSUBSCRIBE = "unsubscribe"
    PREFERENCES = "preferences"


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
        digest = hmac.new(self._secret, b"address:" + email.encode(), hashlib.sha256).digest()
        return digest[:FINGERPRINT_BYTES].hex()

    def mint(self, purpose: Purpose, pk: int, email: str) -> str:
        """A token letting its holder do `purpose` for subscriber `pk` while it has `email`."""
        token = self._serializers[purpose].dumps([pk, self.fingerprint(email)])
        assert isinstance(token, str)
        return token

    def read(self, purpose: Purpose, token: str, *, max_age: int) -> Claim:
        """The claim of a token for `purpose` at most `max_age` seconds old, else TokenError."""
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
    log.warning(
        "security.secret_key is not set; using a key generated once and kept in the database. "
        "Set SYNDICATE_SECURITY__SECRET_KEY in production"
    )
    return str(value)
