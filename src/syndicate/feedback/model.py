"""The values feedback is made of: one recipient's outcome, and the clues naming its message."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class FeedbackKind(StrEnum):
    """What a report says happened to one message."""

    HARD = "hard"  # refused for good: unknown user, domain not found (5.x.x)
    SOFT = "soft"  # refused for now: mailbox full, try later (4.x.x)
    COMPLAINT = "complaint"  # the reader marked it as spam
    DELIVERED = "delivered"  # it reached the mailbox (a later delivery resets soft bounces)


class Provider(StrEnum):
    """Where feedback came from: a report read as mail, or a provider's webhook."""

    MAIL = "mail"
    SES = "ses"
    POSTMARK = "postmark"
    MAILGUN = "mailgun"
    SENDGRID = "sendgrid"


@dataclass(frozen=True, slots=True)
class Clues:
    """What a report carries that can name the message it is about, strongest first."""

    verp_recipient: str = ""  # the address the report was sent to: bounces+TOKEN@...
    mail_token: str = ""  # our X-Syndicate-Mail header, quoted back from the original
    message_id: str = ""  # the original message's Message-ID, "<id@domain>"


@dataclass(frozen=True, slots=True)
class Feedback:
    """One recipient's outcome as a report or webhook tells it.

    `key` is unique to the report and the recipient (a report's Message-ID, a webhook's event
    id): the same report read twice is one event.
    """

    provider: Provider
    kind: FeedbackKind
    email: str  # the recipient as the report names it
    key: str
    occurred_at: datetime
    status: str = ""  # the enhanced status code, 5.1.1
    diagnostic: str = ""  # the remote server's words, or the provider's
    reference: str = ""  # where the raw report can be found again
    clues: Clues = field(default_factory=Clues)
