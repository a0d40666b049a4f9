"""Each message's envelope sender and mail token: VERP when [mail] bounce_address is set.

A message to subscriber 42 of edition daily-en-2026-11-20 leaves with the envelope sender
`bounces+TOKEN@news.example` (SMTP's MAIL FROM, the outbox's Return-Path), so that the bounce
a relay sends back later names its subscriber and edition whatever the report inside says
(subscribers.verp). The same token goes in the message's X-Syndicate-Mail header, for reports
that quote the original's headers but come back to another address (a relay that rewrote the
envelope, a feedback loop). Without bounce_address the envelope sender is the From address,
as before; the header is written whenever there is a secret to sign the token with. Where
the Postmark webhook is set up, the token also goes as Postmark's metadata, which its events
hand back (they carry no headers of the message).
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr

from syndicate.settings import MailSettings, Settings
from syndicate.subscribers.verp import MailRef, Verp


@dataclass(frozen=True, slots=True)
class Envelope:
    """How one message is addressed beyond its headers: its envelope sender and its token."""

    sender: str  # MAIL FROM / Return-Path
    mail_token: str = ""  # the X-Syndicate-Mail header's value; empty for none
    postmark_metadata: bool = False  # the token also as X-PM-Metadata-syndicate-mail


class Envelopes:
    """Mints each message's envelope from [mail] and the secret key the links are signed with."""

    def __init__(self, mail: MailSettings, secret: str, *, postmark: bool = False) -> None:
        """Envelopes for mail sent as `mail` says; an empty `secret` mints no tokens.

        `postmark`: Postmark carries the mail, so its webhook is told each message's token.
        """
        self.plain = Envelope(parseaddr(mail.from_address)[1])
        self.bounce_address = mail.bounce_address
        self.verp = Verp(secret) if secret else None
        self.postmark = postmark

    def of(self, pk: int, edition_id: str) -> Envelope:
        """The envelope of the message to subscriber `pk` of `edition_id` (or CONFIRMATION)."""
        if self.verp is None:
            return self.plain
        ref = MailRef(pk, edition_id)
        token = self.verp.token(ref)
        sender = self.verp.sender(self.bounce_address, ref) if self.bounce_address else None
        return Envelope(sender or self.plain.sender, token, self.postmark)


def envelopes_for(settings: Settings, secret: str) -> Envelopes:
    """The envelopes `settings` ask for: VERP by [mail], Postmark's metadata when its webhook is set."""
    return Envelopes(
        settings.mail, secret, postmark=bool(settings.bounces.webhooks.postmark_username)
    )
