"""Polling every source in turn: a failing source never stops another."""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Engine

from syndicate.observe import metrics
from syndicate.observe.logs import logfmt
from syndicate.settings import Settings
from syndicate.sources.inbox import poll_inbox
from syndicate.sources.report import INBOX, WORDPRESS, SourceError, SourceReport, SourcesReport
from syndicate.sources.wordpress import poll_wordpress

log = logging.getLogger(__name__)

Poll = Callable[[SourceReport], object]


def poll_sources(engine: Engine, settings: Settings) -> SourcesReport:
    """Poll the inbox, then WordPress when a url is set; a failing source never stops another."""
    languages = settings.site.languages
    sources = settings.sources
    polls: list[tuple[str, Poll]] = [
        (
            INBOX,
            lambda report: poll_inbox(
                engine, sources, languages, report=report, limits=settings.ingest
            ),
        ),
    ]
    if sources.wordpress.url is not None:
        polls.append(
            (
                WORDPRESS,
                lambda report: poll_wordpress(
                    engine, sources.wordpress, languages, report=report, limits=settings.ingest
                ),
            )
        )
    return SourcesReport(tuple(_poll(name, poll) for name, poll in polls))


def _poll(name: str, poll: Poll) -> SourceReport:
    report = SourceReport(name)
    try:
        poll(report)
    except SourceError as error:
        report.error = error.reason
    except Exception as error:  # a bug or a database error: this source fails, the others run
        report.error = _one_line(f"{type(error).__name__}: {error}")
        log.error("source traceback source=%s", name, exc_info=True)
    metrics.ingest_records.labels(name, "accepted").inc(report.accepted)
    metrics.ingest_records.labels(name, "rejected").inc(report.rejected)
    if report.error is not None:
        metrics.source_failures.labels(name).inc()
        log.warning("source failed source=%s error=%s", name, logfmt(report.error))
    else:
        busy = report.read or report.rejected
        (log.info if busy else log.debug)(
            "source polled source=%s read=%d accepted=%d stored=%d rejected=%d waiting=%d",
            name,
            report.read,
            report.accepted,
            report.stored,
            report.rejected,
            report.waiting,
        )
    return report


def _one_line(text: str, limit: int = 500) -> str:
    """The first line of an error, shortened: database errors carry whole statements."""
    first = text.strip().splitlines()[0] if text.strip() else text
    return first if len(first) <= limit else first[: limit - 1] + "…"
