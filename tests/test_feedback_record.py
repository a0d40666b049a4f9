"""Recording feedback: attributed to the right subscriber and edition, once, suppressing by the rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from syndicate.feedback.model import Clues, Feedback, FeedbackKind, Provider
from syndicate.feedback.record import FeedbackRules, record_feedback
from syndicate.store.schema import feedback_event
from syndicate.subscribers import registry
from syndicate.subscribers.verp import CONFIRMATION, MailRef, Verp
from tests.support.subscribers import add_subscribers

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
VERP = Verp("test secret")
RULES = FeedbackRules(soft_limit=3, soft_days=14, verp=VERP, bounce_address="bounces@news.example")
EDITION = "daily-en-2026-11-29"


def _feedback(
    kind: FeedbackKind, email: str, key: str, *, at: datetime = NOW, clues: Clues | None = None
) -> Feedback:
    return Feedback(
        Provider.MAIL, kind, email, key, at, status="5.1.1" if kind == "hard" else "4.2.2",
        diagnostic="550 5.1.1 no such user", clues=clues or Clues(),
    )  # fmt: skip


def _pk(engine: Engine, email: str) -> int:
    found = registry.find_by_email(engine, email)
    assert found is not None
    return found.pk


def _events(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(feedback_event)) or 0)


@given(
    pk=st.integers(min_value=0, max_value=2**63),
    kind=st.sampled_from(["daily", "weekly", "monthly"]),
    language=st.sampled_from(["en", "ar", "fa"]),
    day=st.dates(min_value=datetime(2000, 1, 1).date(), max_value=datetime(2150, 1, 1).date()),
    confirmation=st.booleans(),
)
def test_a_verp_address_names_its_mail_and_fits_smtp(
    pk: int, kind: str, language: str, day: object, confirmation: bool
) -> None:
    """Every envelope sender reads back as its subscriber and mail, in any case, within 64 octets."""
    ref = MailRef(pk, CONFIRMATION if confirmation else f"{kind}-{language}-{day}")
    sender = VERP.sender("bounces@news.example", ref)
    local = sender.rpartition("@")[0]
    assert len(local.encode()) <= 64
    assert VERP.read_address("bounces@news.example", sender.upper()) == ref
    assert Verp("another secret").read_address("bounces@news.example", sender) is None


@given(token=st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567", max_size=60))
def test_a_token_that_does_not_verify_names_nothing(token: str) -> None:
    """Random and cut tokens attribute nothing."""
    assert VERP.read(token) is None


def test_verp_attributes_even_when_the_report_names_another_address(sqlite_engine: Engine) -> None:
    """The envelope names subscriber and edition; the forwarded address in the report does not."""
    add_subscribers(sqlite_engine, ["reader@example.org"])
    pk = _pk(sqlite_engine, "reader@example.org")
    verp = Clues(verp_recipient=VERP.sender("bounces@news.example", MailRef(pk, EDITION)))
    done = record_feedback(
        sqlite_engine,
        _feedback(FeedbackKind.HARD, "alias@forward.example", "r1", clues=verp),
        RULES,
    )
    assert (done.subscriber_pk, done.edition_id, done.email) == (pk, EDITION, "reader@example.org")
    assert done.line() == f"bounced hard reader@example.org {EDITION}"
    assert registry.suppression_reason(sqlite_engine, "reader@example.org") == "bounced"


def test_a_forged_token_falls_back_to_the_reported_address(sqlite_engine: Engine) -> None:
    """A token signed with another key names nobody; the failed recipient is used instead."""
    add_subscribers(sqlite_engine, ["victim@example.org", "reader@example.org"])
    forged = Verp("not ours").sender("bounces@news.example", MailRef(1, EDITION))
    clues = Clues(verp_recipient=forged)
    done = record_feedback(
        sqlite_engine, _feedback(FeedbackKind.HARD, "reader@example.org", "r1", clues=clues), RULES
    )
    assert done.email == "reader@example.org"
    assert done.edition_id is None
    assert registry.suppression_reason(sqlite_engine, "victim@example.org") is None


def test_the_same_report_read_twice_is_one_event(sqlite_engine: Engine) -> None:
    """Replaying a report records nothing new and says so."""
    add_subscribers(sqlite_engine, ["reader@example.org"])
    first = record_feedback(
        sqlite_engine, _feedback(FeedbackKind.COMPLAINT, "reader@example.org", "k"), RULES
    )
    again = record_feedback(
        sqlite_engine, _feedback(FeedbackKind.COMPLAINT, "reader@example.org", "k"), RULES
    )
    assert (first.new, first.suppressed, again.new, again.suppressed) == (True, True, False, False)
    assert again.line().endswith("(already recorded)")
    assert _events(sqlite_engine) == 1
    assert registry.suppression_reason(sqlite_engine, "reader@example.org") == "complained"


@pytest.mark.parametrize("delivered_between", [False, True])
def test_soft_bounces_suppress_at_the_limit_unless_a_delivery_came_between(
    sqlite_engine: Engine, delivered_between: bool
) -> None:
    """Three soft bounces in 14 days suppress; a delivery after the first two starts again."""
    add_subscribers(sqlite_engine, ["full@example.org"])
    moments = [NOW - timedelta(days=days) for days in (10, 5, 1)]
    results = []
    for number, moment in enumerate(moments):
        if delivered_between and number == 2:
            delivered = _feedback(FeedbackKind.DELIVERED, "full@example.org", "d", at=moment)
            record_feedback(sqlite_engine, delivered, RULES)
        soft = _feedback(FeedbackKind.SOFT, "full@example.org", f"s{number}", at=moment)
        results.append(record_feedback(sqlite_engine, soft, RULES).suppressed)
    expected = [False, False, not delivered_between]
    assert results == expected
    reason = registry.suppression_reason(sqlite_engine, "full@example.org")
    assert reason == (None if delivered_between else "bounced")


def test_soft_bounces_older_than_the_window_do_not_count(sqlite_engine: Engine) -> None:
    """Bounces spread over more than soft_days never add up to the limit."""
    add_subscribers(sqlite_engine, ["slow@example.org"])
    for number, days in enumerate((40, 25, 1)):
        soft = _feedback(
            FeedbackKind.SOFT, "slow@example.org", f"s{number}", at=NOW - timedelta(days=days)
        )
        assert not record_feedback(sqlite_engine, soft, RULES).suppressed
    assert registry.suppression_reason(sqlite_engine, "slow@example.org") is None
