"""Deliverability rates: per edition and per day in `syndicate status`, and at /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, select

from syndicate.delivery.ledger import send_edition
from syndicate.delivery.recording import RecordingTransport
from syndicate.delivery.transports import PermanentFailure
from syndicate.digests.model import Edition
from syndicate.feedback.model import Clues, Feedback, FeedbackKind, Provider
from syndicate.feedback.rate_metrics import deliverability_registry
from syndicate.feedback.rates import recent_days, recent_editions
from syndicate.feedback.record import FeedbackRules, record_feedback
from syndicate.send.plan import plan_send
from syndicate.service.status import format_status, read_status
from syndicate.settings import Settings
from syndicate.store.leases import holder_name
from syndicate.store.schema import delivery, subscriber
from syndicate.web.app import create_app
from tests.support.digest_corpus import build, digest_corpus, ingest
from tests.support.ports import free_port
from tests.support.subscribers import add_subscribers
from tests.support.web_server import serve_in_thread

READERS = [f"r{number}@example.org" for number in range(10)]
HOLDER = holder_name()


def _sent(engine: Engine, edition: Edition, refused: tuple[str, ...] = ()) -> None:
    """Send `edition` to every reader, the server refusing `refused` for good."""
    transport = RecordingTransport(
        {address: PermanentFailure(550, "no such user") for address in refused}
    )
    send_edition(engine, plan_send(engine, Settings(), edition, transport, None), holder=HOLDER)


def _message_id(engine: Engine, edition: Edition, email: str) -> str:
    with engine.connect() as connection:
        return str(
            connection.scalar(
                select(delivery.c.message_id)
                .join(subscriber, subscriber.c.pk == delivery.c.subscriber_pk)
                .where(delivery.c.edition_id == edition.id, subscriber.c.email == email)
            )
        )


def _ledger_time(engine: Engine) -> datetime:
    with engine.connect() as connection:
        at = connection.scalar(select(delivery.c.at).limit(1))
    assert isinstance(at, datetime)
    return at


@pytest.fixture
def reported(engine: Engine) -> tuple[Edition, datetime]:
    """An edition sent to ten (one refused at once), then reports of what came back, as recorded."""
    ingest(engine, *digest_corpus())
    edition = build(engine)
    add_subscribers(engine, READERS)
    _sent(engine, edition, refused=("r3@example.org",))
    moment = _ledger_time(engine)  # the reports arrive on the day the mail went out

    def report(kind: FeedbackKind, email: str, key: str, provider: Provider, about: bool) -> None:
        clues = Clues(message_id=_message_id(engine, edition, email)) if about else Clues()
        feedback = Feedback(provider, kind, email, key, moment, status="5.1.1", clues=clues)
        record_feedback(engine, feedback, FeedbackRules())

    report(FeedbackKind.HARD, "r1@example.org", "dsn-1", Provider.MAIL, about=True)
    report(FeedbackKind.HARD, "r1@example.org", "ses-1", Provider.SES, about=True)  # same one
    report(FeedbackKind.SOFT, "r2@example.org", "pm-1", Provider.POSTMARK, about=True)
    report(FeedbackKind.COMPLAINT, "r4@example.org", "ses-2", Provider.SES, about=True)
    report(FeedbackKind.DELIVERED, "r5@example.org", "ses-3", Provider.SES, about=True)
    # About no edition (a confirmation mail, say): counted on its day, not against the edition.
    report(FeedbackKind.COMPLAINT, "stranger@example.org", "arf-1", Provider.MAIL, about=False)
    return edition, moment


def test_rates_count_each_address_once_per_edition_and_per_day(
    engine: Engine, reported: tuple[Edition, datetime]
) -> None:
    """Sent includes the refusal, which is a hard bounce; two reports of one bounce count once."""
    edition, moment = reported
    [by_edition] = recent_editions(engine)
    assert (by_edition.label, by_edition.sent) == (edition.id, 10)
    assert (by_edition.hard, by_edition.soft, by_edition.complained) == (2, 1, 1)
    assert by_edition.rate(by_edition.hard) == pytest.approx(0.2)
    [by_day] = recent_days(engine, 7, moment)
    assert by_day.label == moment.date().isoformat()
    assert (by_day.sent, by_day.hard, by_day.soft, by_day.complained) == (10, 2, 1, 2)


def test_status_shows_the_rates_of_recent_editions_and_days(
    engine: Engine, reported: tuple[Edition, datetime]
) -> None:
    """`syndicate status` has a table of each: counts and their shares of sent, aligned."""
    edition, moment = reported
    settings = Settings()
    shown = format_status(read_status(engine, settings, now=moment), settings)
    day = moment.date().isoformat()
    assert shown.endswith(
        "Deliverability (shares of sent; hard bounces include refusals while sending):\n"
        "  edition              sent  hard bounces  soft bounces   complaints\n"
        f"  {edition.id}    10   2 (20.00 %)   1 (10.00 %)  1 (10.00 %)\n"
        "  day (UTC)   sent  hard bounces  soft bounces   complaints\n"
        f"  {day}    10   2 (20.00 %)   1 (10.00 %)  2 (20.00 %)\n"
    ), shown
    assert f"  {edition.id}  9 sent, 1 bounced, 0 deferred, 0 failed, 0 suppressed;" in shown


def test_status_says_none_before_anything_was_sent(engine: Engine) -> None:
    """An empty store: each table says it has no rows, by its name."""
    settings = Settings()
    shown = format_status(read_status(engine, settings), settings)
    assert shown.endswith(
        "Deliverability (shares of sent; hard bounces include refusals while sending):\n"
        "  edition: none\n  day (UTC): none\n"
    )


# /metrics ----------------------------------------------------------------------------------


@pytest.fixture
def scrape(engine: Engine, tmp_path: Path) -> Iterator[str]:
    """The web front serving the store's deliverability beside the process's own counters."""
    (tmp_path / "feeds").mkdir()
    app = create_app(tmp_path / "feeds", more_metrics=[deliverability_registry(engine)])
    yield from serve_in_thread(app, free_port())


def _samples(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200
    found: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_metrics_show_events_by_provider_and_the_newest_edition_of_each_kind_and_language(
    engine: Engine, reported: tuple[Edition, datetime], scrape: str
) -> None:
    """Counters by provider and kind; one gauge series a kind and language, the newest edition."""
    edition, _moment = reported
    older = build(engine, day=date(2026, 11, 22))
    _sent(engine, older, refused=tuple(READERS))  # all refused, but not the newest edition
    samples = _samples(scrape)
    assert samples["syndicate_feedback_events_total"] == {
        (("kind", "hard"), ("provider", "mail")): 1,
        (("kind", "hard"), ("provider", "ses")): 1,
        (("kind", "soft"), ("provider", "postmark")): 1,
        (("kind", "complaint"), ("provider", "ses")): 1,
        (("kind", "delivered"), ("provider", "ses")): 1,
        (("kind", "complaint"), ("provider", "mail")): 1,
    }
    daily_en = (("kind", "daily"), ("language", "en"))
    assert samples["syndicate_latest_edition_sent"] == {daily_en: 10}
    midnight = datetime(2026, 11, 23, tzinfo=UTC).timestamp()
    assert edition.id.endswith("2026-11-23")
    assert samples["syndicate_latest_edition_date_seconds"] == {daily_en: midnight}
    assert samples["syndicate_latest_edition_rate"] == {
        (*daily_en, ("outcome", "complaint")): pytest.approx(0.1),
        (*daily_en, ("outcome", "hard")): pytest.approx(0.2),
        (*daily_en, ("outcome", "soft")): pytest.approx(0.1),
    }
    assert samples["syndicate_latest_edition_feedback"][(*daily_en, ("outcome", "hard"))] == 2
    assert "syndicate_feeds_written_total" in samples, "the process's own counters come too"
