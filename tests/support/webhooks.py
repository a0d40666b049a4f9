"""Provider webhooks in tests: the site served with their secrets set, and what they changed.

`served_site` runs the site `syndicate serve` builds (`create_site`) on a real uvicorn server,
its webhooks' secrets set as a test names them, with a store holding an edition already sent
(so events can be attributed by Message-ID). Amazon cannot be reached from tests: the
certificates and subscription links it would serve come from `AmazonStandIn`, a local
handler behind the injectable transport the site fetches through.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st
from sqlalchemy import Engine, select

from syndicate.delivery.ledger import send_edition
from syndicate.delivery.recording import RecordingTransport
from syndicate.send.plan import plan_send
from syndicate.settings import Settings
from syndicate.store import open_database
from syndicate.store.leases import holder_name
from syndicate.store.schema import delivery, feedback_event, subscriber, suppression
from syndicate.subscribers.verp import MailRef, Verp
from syndicate.web.site import create_site
from syndicate.web.webhooks.receiving import Outside
from tests.support.digest_corpus import build, digest_corpus, ingest
from tests.support.ports import free_port
from tests.support.sites import SECRET, site_settings
from tests.support.subscribers import confirmed
from tests.support.web_server import serve_in_thread

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # the served site's clock
READERS = ("reader@example.org", "other@example.org")
CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-test.pem"
SUBSCRIBE_URL = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&Token=t0k"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:syndicate-feedback"


@dataclass
class AmazonStandIn:
    """Amazon's side for tests: serves an SNS signing certificate, records subscription visits.

    Its certificate is issued by a test CA made here; `sign` signs an SNS message with it as
    SNS would. Requests to any other URL are answered 404 and recorded too, so a test can
    assert that nothing was fetched from a host that is not Amazon's.
    """

    key: rsa.RSAPrivateKey = field(default_factory=lambda: _keys()[0])
    certificate_pem: bytes = field(default_factory=lambda: _keys()[1])
    requests: list[str] = field(default_factory=list)

    @property
    def transport(self) -> httpx.MockTransport:
        """The transport the site's Outside fetches through."""
        return httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests.append(url)
        if url == CERT_URL:
            return httpx.Response(200, content=self.certificate_pem)
        if url == SUBSCRIBE_URL:
            return httpx.Response(200, content=b"<ConfirmSubscriptionResponse/>")
        return httpx.Response(404)

    def sign(self, message: dict[str, Any], version: str = "1") -> dict[str, Any]:
        """`message` with SNS's signature fields, signed as SNS signs it."""
        message = {**message, "SignatureVersion": version, "SigningCertURL": CERT_URL}
        names = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
        if message["Type"] != "Notification":
            names = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn",
                     "Type")  # fmt: skip
        lines = [part for name in names if name in message for part in (name, message[name])]
        # SignatureVersion 1 is SHA1withRSA: SNS still signs with it, so the site must read it.
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()  # noqa: S303
        signed = ("\n".join(lines) + "\n").encode()
        signature = self.key.sign(signed, padding.PKCS1v15(), digest)
        return {**message, "Signature": base64.b64encode(signature).decode()}


@cache
def _keys() -> tuple[rsa.RSAPrivateKey, bytes]:
    """A test CA and the SNS signing certificate it issued (made once a test run)."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Syndicate test CA")])
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com (test)")])
    start = datetime.now(UTC) - timedelta(days=1)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(ca_name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(start + timedelta(days=30))
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    return key, certificate.public_bytes(serialization.Encoding.PEM)


@dataclass
class WebhookSite:
    """A served site: its URL, its store, the edition it sent and Amazon's stand-in."""

    url: str
    engine: Engine
    edition_id: str
    amazon: AmazonStandIn

    def post(
        self, provider: str, body: bytes | str, headers: Mapping[str, str] = {}
    ) -> httpx.Response:
        """POST `body` to /webhooks/{provider}."""
        content = body.encode() if isinstance(body, str) else body
        return httpx.post(f"{self.url}/webhooks/{provider}", content=content,
                          headers=dict(headers or {}), timeout=30)  # fmt: skip

    def message_id(self, email: str) -> str:
        """The Message-ID of the edition's message to `email`, as the ledger holds it."""
        with self.engine.connect() as connection:
            found = connection.scalar(
                select(delivery.c.message_id)
                .join(subscriber, subscriber.c.pk == delivery.c.subscriber_pk)
                .where(subscriber.c.email == email, delivery.c.edition_id == self.edition_id)
            )
        assert found, f"no message to {email}"
        return str(found)

    def mail_token(self, email: str) -> str:
        """The X-Syndicate-Mail token of the edition's message to `email`."""
        return Verp(SECRET).token(MailRef(self.pk(email), self.edition_id))

    def pk(self, email: str) -> int:
        """The subscriber's pk."""
        with self.engine.connect() as connection:
            return int(
                connection.scalar(select(subscriber.c.pk).where(subscriber.c.email == email))
            )

    def events(self) -> list[tuple[Any, ...]]:
        """Every stored event: (key, provider, kind, email, subscriber pk, edition, status)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(feedback_event.c.key, feedback_event.c.provider, feedback_event.c.kind,
                       feedback_event.c.email, feedback_event.c.subscriber_pk,
                       feedback_event.c.edition_id, feedback_event.c.status)
                .order_by(feedback_event.c.pk)
            )  # fmt: skip
            return [tuple(row) for row in rows]

    def suppressed(self) -> dict[str, str]:
        """The suppression list: address -> reason."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(suppression.c.email, suppression.c.reason))
            return {email: reason for email, reason in rows}

    def store(self) -> tuple[object, ...]:
        """What webhooks may change: the events and the suppression list."""
        return (self.events(), self.suppressed())


def served_site(
    folder: Path, webhooks: Mapping[str, Any], database_url: str | None = None
) -> Iterator[WebhookSite]:
    """The site with [bounces.webhooks] set to `webhooks`, its edition sent to READERS.

    Its store is SQLite in `folder` unless `database_url` names another (an empty one).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    database = {"url": database_url} if database_url else {}
    settings = site_settings(
        folder, f"{url}/", bounces={"webhooks": dict(webhooks)}, database=database
    )
    engine = open_database(settings.database.url)
    try:
        edition_id = _send_edition(engine, settings)
        amazon = AmazonStandIn()
        outside = Outside(transport=amazon.transport, clock=NOW.timestamp)
        for served in serve_in_thread(create_site(engine, settings, outside=outside), port):
            yield WebhookSite(served, engine, edition_id, amazon)
    finally:
        engine.dispose()


def _send_edition(engine: Engine, settings: Settings) -> str:
    """An edition built and sent to READERS (recorded, not mailed); its id."""
    ingest(engine, *digest_corpus())
    edition = build(engine)
    for email in READERS:
        confirmed(engine, email)
    plan = plan_send(engine, settings, edition, RecordingTransport(), None)
    report = send_edition(engine, plan, holder=holder_name())
    assert report.sent == len(READERS)
    return edition.id


def as_json(value: object) -> str:
    """`value` as the compact JSON a provider posts."""
    return json.dumps(value, separators=(",", ":"))


# Any JSON value, for bodies and fields a provider might send wrong.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


def basic_auth(user: str, password: str) -> dict[str, str]:
    """The headers Postmark sends for credentials in the webhook URL: HTTP Basic, JSON."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"authorization": f"Basic {token}", "content-type": "application/json"}


def mailgun_body(event_data: Any, *, key: str, timestamp: str, token: str) -> str:
    """A webhook body signed as Mailgun signs it: hex HMAC-SHA256 of timestamp + token."""
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"timestamp": timestamp, "token": token, "signature": signature},
            "event-data": event_data}  # fmt: skip
    return as_json(body)


def sendgrid_headers(body: str, key: ec.EllipticCurvePrivateKey, timestamp: str) -> dict[str, str]:
    """The headers SendGrid signs a body with: ECDSA P-256 over timestamp + body, base64 DER."""
    signed = key.sign(timestamp.encode() + body.encode(), ec.ECDSA(hashes.SHA256()))
    return {
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signed).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "content-type": "application/json",
    }
