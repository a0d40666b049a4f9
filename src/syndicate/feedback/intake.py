"""Taking in one report received as mail: parse it, record each recipient's feedback, say what happened."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from syndicate.feedback.record import FeedbackRules, Recorded, record_feedback
from syndicate.feedback.reports import parse_report
from syndicate.settings import Settings
from syndicate.subscribers.tokens import secret_key
from syndicate.subscribers.verp import Verp


@dataclass(frozen=True, slots=True)
class TakenReport:
    """What one report did: the feedback recorded from it, or why it was ignored."""

    recorded: tuple[Recorded, ...] = ()
    ignored: str = ""

    def lines(self) -> list[str]:
        """One line per recipient it reported on, or `ignored: reason`."""
        if self.ignored:
            return [f"ignored: {self.ignored}"]
        return [recorded.line() for recorded in self.recorded]


def feedback_rules(engine: Engine, settings: Settings) -> FeedbackRules:
    """The rules of [bounces], reading VERP tokens with the secret key the links are signed with."""
    bounces = settings.bounces
    return FeedbackRules(
        soft_limit=bounces.soft_limit,
        soft_days=bounces.soft_days,
        verp=Verp(secret_key(engine, settings.security.secret_key.get_secret_value())),
        bounce_address=settings.mail.bounce_address,
    )


def take_report(
    engine: Engine,
    raw: bytes,
    rules: FeedbackRules,
    *,
    reference: str = "",
    envelope_recipient: str = "",
) -> TakenReport:
    """Parse the report `raw` and record what it says; replaying it records nothing new."""
    parsed = parse_report(raw, reference=reference, envelope_recipient=envelope_recipient)
    if parsed.ignored:
        return TakenReport(ignored=parsed.ignored)
    return TakenReport(tuple(record_feedback(engine, one, rules) for one in parsed.feedback))
