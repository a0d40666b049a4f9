"""Amazon SNS messages: their signatures checked with certificates only Amazon's hosts serve.

SNS signs the canonical string of a message's documented fields (which ones depend on its
Type) with SHA1withRSA (SignatureVersion 1) or SHA256withRSA (2), and names the certificate
in SigningCertURL. The certificate is trusted because it comes over https from
`sns.<region>.amazonaws.com`: any other URL is refused before anything is fetched, and so is
a SubscribeURL elsewhere. Certificates are fetched once each and kept.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from syndicate.web.webhooks.payload import Malformed
from syndicate.web.webhooks.receiving import Outside, Refused

AMAZON_HOST = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com")
# The fields each Type's signature covers, in the order they are signed (Subject if present).
SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": (
        "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
    ),
}  # fmt: skip
SIGNED_FIELDS["UnsubscribeConfirmation"] = SIGNED_FIELDS["SubscriptionConfirmation"]
HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}
MAX_CERTIFICATE = 64 * 1024
TIMEOUT = 10.0  # seconds for fetching a certificate or visiting a SubscribeURL
KEPT = 16  # certificates kept; SNS signs with one a region at a time


def amazon_url(url: str, field: str) -> str:
    """`url` if it is https on an SNS host (`sns.<region>.amazonaws.com`), else Refused(403)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused(403, f"{field} is not a URL") from None
    host_ok = parts.hostname is not None and AMAZON_HOST.fullmatch(parts.hostname)
    if (
        parts.scheme != "https"
        or not host_ok
        or parts.username is not None
        or port not in (None, 443)
    ):
        raise Refused(403, f"{field} is not https on an sns.<region>.amazonaws.com host")
    return url


def canonical(message: Mapping[str, Any]) -> bytes:
    """The string SNS signs: each signed field present, in order, its name and value a line each."""
    lines: list[str] = []
    for name in SIGNED_FIELDS[message["Type"]]:
        value = message.get(name)
        if value is None and name == "Subject":
            continue
        if not isinstance(value, str):
            raise Malformed(f"body.{name}: expected a string")
        lines += [name, value]
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


class Certificates:
    """SNS signing keys by certificate URL, fetched once each through `outside`'s transport."""

    def __init__(self, outside: Outside) -> None:
        """Fetch through `outside.transport` (the network when None)."""
        self._outside = outside
        self._keys: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()

    async def key(self, url: str) -> rsa.RSAPublicKey:
        """The public key of the certificate at `url` (an Amazon URL, checked already)."""
        if url in self._keys:
            self._keys.move_to_end(url)
            return self._keys[url]
        pem = await fetch(self._outside, url, "SigningCertURL", MAX_CERTIFICATE)
        try:
            key = x509.load_pem_x509_certificate(pem).public_key()
        except ValueError:
            raise Refused(403, "SigningCertURL serves no PEM certificate") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise Refused(403, "SigningCertURL's certificate has no RSA key")
        self._keys[url] = key
        while len(self._keys) > KEPT:
            self._keys.popitem(last=False)
        return key


async def verify(message: Mapping[str, Any], certificates: Certificates) -> None:
    """Refused unless `message` carries SNS's valid signature (its Type is a known one)."""
    version = message.get("SignatureVersion")
    algorithm = HASHES.get(version) if isinstance(version, str) else None
    if algorithm is None:
        raise Refused(403, "SignatureVersion is neither 1 nor 2")
    url = amazon_url(str(message["SigningCertURL"]), "SigningCertURL")
    signed = canonical(message)
    try:
        signature = base64.b64decode(str(message["Signature"]), validate=True)
    except (binascii.Error, ValueError):
        raise Refused(403, "Signature is not base64") from None
    key = await certificates.key(url)
    try:
        key.verify(signature, signed, padding.PKCS1v15(), algorithm())
    except InvalidSignature:
        raise Refused(403, "the signature does not match SigningCertURL's certificate") from None


async def fetch(outside: Outside, url: str, field: str, limit: int) -> bytes:
    """GET `url` (an Amazon URL, checked already): its body, or Refused(503) to be tried again."""
    try:
        async with (
            httpx.AsyncClient(transport=outside.transport, timeout=TIMEOUT) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise Refused(503, f"{field} answered {response.status_code}")
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > limit:
                    raise Refused(403, f"{field} answered with over {limit:,} bytes")
            return body
    except httpx.HTTPError as error:
        raise Refused(503, f"{field} could not be reached: {error}") from None
