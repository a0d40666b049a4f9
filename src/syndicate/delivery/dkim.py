"""DKIM signatures (RFC 6376) on digest messages: relaxed/relaxed, rsa-sha256.

dkimpy's own functions parse, canonicalise and hash the headers, so what is signed is exactly
what its verifier (and any other) will hash. The RSA signature itself is computed with the
`cryptography` package (OpenSSL, a dependency): dkimpy's pure-Python RSA costs about 6 ms a
message against 0.2 ms, which alone would hold a send under 200 messages a second.
"""

from __future__ import annotations

import base64
import hashlib
import re
import time
from collections.abc import Callable
from typing import overload

import dkim
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils
from dkim.canonicalization import CanonicalizationPolicy, correct_empty_body, strip_trailing_lines

from syndicate.delivery.message import MessageBytes
from syndicate.settings import DkimSettings

SIGNED_HEADERS = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"feedback-id",  # Gmail counts complaints by it only when it is signed
    b"mime-version",
    b"content-type",
)
# X-Syndicate-Mail (the VERP token) is left unsigned: the token carries its own HMAC, so an
# altered one attributes nothing whether DKIM covers it or not, and a relay that drops X-
# headers (some do) leaves the signature whole.
# Named once more though each occurs once: a second From, Subject or List-Unsubscribe added on
# the way then breaks the signature instead of riding on it (RFC 6376 8.15, "oversigning").
OVERSIGNED = (b"from", b"to", b"subject", b"list-unsubscribe", b"list-unsubscribe-post")
MIN_KEY_BITS = 1024  # what dkimpy's verifier accepts; 2048 is the usual choice

_RELAXED = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_SELECTOR = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62})")

SignDigest = Callable[[bytes], bytes]


class DkimKeyError(ValueError):
    """A DKIM key, domain or selector that cannot be used; the message says which and why."""


class DkimSigner:
    """Signs messages for one domain and selector with one RSA key."""

    def __init__(self, domain: str, selector: str, private_key_pem: bytes | str) -> None:
        """Sign as `domain` (d=) with `selector` (s=) and a PEM RSA private key."""
        if not _DOMAIN.fullmatch(domain):
            raise DkimKeyError(f"not a DKIM signing domain: {domain!r}")
        if not _SELECTOR.fullmatch(selector):
            raise DkimKeyError(f"not a DKIM selector: {selector!r}")
        self.domain = domain
        self.selector = selector
        if isinstance(private_key_pem, str):
            private_key_pem = private_key_pem.encode("ascii", "replace")
        self._sign_digest = _rsa_signer(private_key_pem)

    @classmethod
    def from_settings(cls, settings: DkimSettings) -> DkimSigner | None:
        """The signer [mail.dkim] describes, or None when its domain is empty (no signing)."""
        if not settings.domain:
            return None
        path = settings.key_file
        if path is None:
            raise DkimKeyError("mail.dkim.domain is set but mail.dkim.key_file is not")
        try:
            pem = path.read_bytes()
        except OSError as error:
            raise DkimKeyError(
                f"cannot read the DKIM key file {path}: {error.strerror or error}"
            ) from None
        try:
            return cls(settings.domain, settings.selector, pem)
        except DkimKeyError as error:
            raise DkimKeyError(f"DKIM key file {path}: {error}") from None

    @overload
    def sign(self, message: MessageBytes) -> MessageBytes: ...

    @overload
    def sign(self, message: bytes) -> bytes: ...

    def sign(self, message: bytes) -> bytes:
        """`message` with a DKIM-Signature header added at the top (MessageBytes stay so)."""
        headers, body = _split(message)
        if isinstance(message, MessageBytes):  # already canonical, but for trailing empty lines
            canonical: bytes = correct_empty_body(strip_trailing_lines(body))
        else:
            canonical = _relaxed_body(body)
        body_hash = base64.b64encode(hashlib.sha256(canonical).digest())
        included = SIGNED_HEADERS + OVERSIGNED
        fields = [
            (b"v", b"1"),
            (b"a", b"rsa-sha256"),
            (b"c", b"relaxed/relaxed"),
            (b"d", self.domain.encode("ascii")),
            (b"s", self.selector.encode("ascii")),
            (b"t", str(int(time.time())).encode("ascii")),
            (b"h", b" : ".join(included)),
            (b"bh", body_hash),
            (b"b", b""),
        ]
        unsigned = b"; ".join(b"=".join(field) for field in fields)
        hasher = hashlib.sha256()
        # As dkimpy's signer does: the selected headers, then this header with an empty b=,
        # all canonicalised by its relaxed algorithm.
        dkim.hash_headers(
            hasher,
            _RELAXED,
            _RELAXED.canonicalize_headers(headers),
            included,
            (b"DKIM-Signature", b" " + dkim.fold(unsigned, namelen=len(b"DKIM-Signature"))),
            None,
        )
        signature = base64.b64encode(self._sign_digest(hasher.digest()))
        value = dkim.fold(unsigned + signature + b"\r\n", namelen=len(b"DKIM-Signature"))
        signed = b"".join((b"DKIM-Signature: ", value, message))
        return MessageBytes(signed) if isinstance(message, MessageBytes) else signed


def _split(message: bytes) -> tuple[list[list[bytes]], bytes]:
    """The headers as dkimpy parses them, and the body with CRLF line ends."""
    end = message.find(b"\r\n\r\n")
    crlf = isinstance(message, MessageBytes) or message.count(b"\n") == message.count(b"\r\n")
    if end < 0 or not crlf:
        headers, body = dkim.rfc822_parse(message)  # LF line ends: let dkimpy normalise them
        return headers, body
    headers, _ = dkim.rfc822_parse(message[: end + 4])  # parse only the header block
    return headers, message[end + 4 :]


def _relaxed_body(body: bytes) -> bytes:
    """The body in relaxed canonical form, without a regular-expression pass when it is already."""
    if b"\t" in body or b"  " in body or b" \r\n" in body:
        canonical: bytes = _RELAXED.canonicalize_body(body)
        return canonical
    trimmed: bytes = correct_empty_body(strip_trailing_lines(body))
    return trimmed


def _rsa_signer(pem: bytes) -> SignDigest:
    """A function that signs a SHA-256 digest with the key, by OpenSSL."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise DkimKeyError("not an unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DkimKeyError("not an RSA key (DKIM here signs with rsa-sha256)")
    if key.key_size < MIN_KEY_BITS:
        raise DkimKeyError(f"an RSA key of {key.key_size} bits; use at least {MIN_KEY_BITS}")
    scheme = padding.PKCS1v15()
    prehashed = utils.Prehashed(hashes.SHA256())

    def sign(digest: bytes) -> bytes:
        return key.sign(digest, scheme, prehashed)

    return sign
