"""The [bounces] section: what counts as a dead address, and where reports come back from."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Annotated, Literal

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from pydantic import AfterValidator, BeforeValidator, Field, SecretStr

from syndicate.settings.fields import Section, unset_when_empty


class ImapSettings(Section):
    """A bounce mailbox on an IMAP server, polled by the service (off while `host` is empty)."""

    host: str = Field("", description="IMAP server host; empty for no IMAP mailbox.")
    port: int = Field(993, ge=1, le=65535, description="IMAP server port.")
    security: Literal["tls", "starttls", "none"] = Field("tls", description="Transport security.")
    username: str = Field("", description="Login name.")
    password: SecretStr = Field(
        SecretStr(""), description="Login password (set it in the environment)."
    )
    folder: str = Field("INBOX", description="The folder reports arrive in.")
    processed_folder: str = Field(
        "",
        description="Folder a recorded report is moved to; empty to flag it \\Seen and leave it.",
    )


def sendgrid_key(text: str) -> ec.EllipticCurvePublicKey | None:
    """SendGrid's verification key from its base64 DER text; None when unset, else ValueError."""
    if not text.strip():
        return None
    try:
        key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (binascii.Error, ValueError):
        key = None
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError(
            "not an ECDSA P-256 public key in base64 DER, as SendGrid's Mail Settings show it"
        )
    return key


def _sendgrid_key_text(text: str) -> str:
    sendgrid_key(text)
    return text.strip()


class WebhookSettings(Section):
    """Mail providers' event webhooks, each answered only while its secret is set."""

    ses_topic_arns: tuple[str, ...] = Field(
        (), description="Amazon SNS topic ARNs whose notifications /webhooks/ses accepts."
    )
    postmark_username: str = Field("", description="Basic-auth user Postmark's webhook sends.")
    postmark_password: SecretStr = Field(
        SecretStr(""), description="Basic-auth password Postmark's webhook sends."
    )
    mailgun_signing_key: SecretStr = Field(
        SecretStr(""), description="Mailgun's HTTP webhook signing key."
    )
    sendgrid_public_key: Annotated[str, AfterValidator(_sendgrid_key_text)] = Field(
        "", description="SendGrid's event webhook verification key (base64 DER, ECDSA P-256)."
    )


class BounceSettings(Section):
    """Bounces and complaints: when an address is suppressed, and where reports are read."""

    soft_limit: int = Field(
        3, ge=1, le=100, description="Soft bounces within soft_days that suppress an address."
    )
    soft_days: int = Field(
        14, ge=1, le=365, description="Days soft bounces are counted over; a delivery resets."
    )
    pause_rate: float = Field(
        0.05,
        gt=0,
        le=1,
        description="Hard-bounce rate of an edition past which its send stops itself.",
    )
    pause_sample: int = Field(
        200, ge=1, description="Messages an edition must have sent before pause_rate applies."
    )
    maildir: Annotated[Path | None, BeforeValidator(unset_when_empty)] = Field(
        None, description="A local Maildir of reports polled by the service; empty for none."
    )
    poll_seconds: int = Field(
        60, ge=5, le=3600, description="Seconds between looks at the bounce mailboxes."
    )
    imap: ImapSettings = Field(default_factory=ImapSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
