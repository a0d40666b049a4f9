"""Letters as delivery takes them, the headers messages carry, and a DKIM signer to sign them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from syndicate.delivery.dkim import DkimSigner
from syndicate.delivery.message import Letter

WHEN = datetime(2026, 11, 24, 7, 30, tzinfo=timezone(timedelta(hours=3, minutes=30)))
LETTER = Letter(
    from_address="Syndicate Demo News <news@site.example>",
    to_email="reader@example.org",
    to_name="Jo Reader",
    subject="Daily digest: Iraq & US agree a new timetable",
    text="Editor's Choice\n\n1. Iraq & US: a new timetable\nhttps://site.example/en/news/9\n",
    html='<p dir="ltr">Editor\'s Choice</p>\n<a href="https://site.example/en/news/9">Iraq</a>\n',
    list_id="daily.en.site.example",
    list_name="Daily digest",
    unsubscribe_url="https://site.example/unsubscribe/tok.EN-123_x",
    date=WHEN,
)
# Every header of a digest message, in the order it is written.
HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
)
# Every header of a confirmation (a notice), in the order it is written.
CONFIRMATION_HEADERS = [
    "From", "To", "Subject", "Date", "Message-ID", "Auto-Submitted", "List-Id",
    "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version", "Content-Type",
]  # fmt: skip


def dkim_signer() -> DkimSigner:
    """A DKIM signer with a fresh key, as `[mail.dkim]` would configure one."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return DkimSigner("site.example", "syndicate", pem)
