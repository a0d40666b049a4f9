"""What a reader of one report format makes of a message, before it becomes stored feedback."""

from __future__ import annotations

from dataclasses import dataclass

from syndicate.feedback.model import FeedbackKind


@dataclass(frozen=True, slots=True)
class Finding:
    """One recipient's outcome as the report tells it."""

    kind: FeedbackKind
    email: str
    status: str = ""  # the enhanced status code, "5.1.1"
    diagnostic: str = ""  # the remote server's words, one line


@dataclass(frozen=True, slots=True)
class Reading:
    """A format's reading of a report: its findings, or why it has none (`ignored`).

    A reader that finds the original message's headers quoted in the body (not as a part of
    their own) says what they hold; the report's parts are searched otherwise.
    """

    findings: tuple[Finding, ...] = ()
    ignored: str = ""
    mail_token: str = ""
    message_id: str = ""
    envelope_sender: str = ""  # the original's envelope sender (ARF's Original-Mail-From): VERP
