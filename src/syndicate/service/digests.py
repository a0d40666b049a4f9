"""The digest job: build each language's edition for a send time, then send it.

Both steps are idempotent by edition id (a built edition is frozen; the ledger knows who has
it), so running the job again for the same moment, after a crash or a SIGTERM, finishes what
was left and sends nothing twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from syndicate.delivery.ledger import SendReport, Stop
from syndicate.delivery.recorder import DeliveryStatus
from syndicate.delivery.send_lease import SendInProgress
from syndicate.digests.editions import DigestConfig, build_edition, load_edition
from syndicate.domain.periods import Kind
from syndicate.observe import metrics
from syndicate.queue import request_send
from syndicate.send.processes import SendAborted
from syndicate.service.jobstate import JobResult
from syndicate.settings import Settings
from syndicate.workers import WorkerProcesses

log = logging.getLogger(__name__)


@dataclass
class DigestRun:
    """What one run of a digest job did, edition by edition."""

    kind: str
    sent: list[SendReport] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "en: nothing new since …"
    problems: list[str] = field(default_factory=list)  # editions not finished, and why
    unreached: list[str] = field(default_factory=list)  # languages a stop came before

    @property
    def stopped(self) -> bool:
        """Whether a stop request ended the run before every language went out."""
        return bool(self.unreached) or any(report.stopped for report in self.sent)

    @property
    def result(self) -> JobResult:
        """The outcome: ok (every language sent, or skipped for a stated reason), stopped or failed."""
        if self.stopped:
            return JobResult.STOPPED
        if self.problems or any(report.failed for report in self.sent):
            return JobResult.FAILED
        return JobResult.OK

    def summary(self) -> str:
        """One line for the log and `syndicate status`."""
        parts = [
            f"{report.edition_id}: {report.sent} sent, {report.failed} failed"
            + (f" (paused: {report.paused})" if report.paused else "")
            + (" (stopped)" if report.stopped and not report.paused else "")
            for report in self.sent
        ]
        parts += [f"skipped {reason}" for reason in self.skipped]
        parts += self.problems
        if self.unreached:
            parts.append(f"not reached (stopped): {', '.join(self.unreached)}")
        return "; ".join(parts) or "no languages"


def edition_day(moment: datetime, zone: ZoneInfo) -> date:
    """The date of the editions sent at `moment`: its local date in the schedule's zone."""
    return moment.astimezone(zone).date()


def run_digest(
    engine: Engine,
    settings: Settings,
    kind: Kind,
    moment: datetime,
    *,
    stop: Stop,
    now: datetime | None = None,
    processes: WorkerProcesses | None = None,
) -> DigestRun:
    """Build and send every language's `kind` edition for the send time `moment`.

    With PostgreSQL each send is queued as batches for the workers and waited for; once
    `stop` is set the wait ends (the batches stay queued) and the run is stopped.
    """
    config = DigestConfig.from_settings(settings)
    day = edition_day(moment, settings.schedule.zone)
    run = DigestRun(kind)
    for index, language in enumerate(settings.site.languages):
        if stop.is_set():
            # Recorded as stopped, never ok: the catch-up at the next start sends these.
            run.unreached = list(settings.site.languages[index:])
            break
        built = build_edition(engine, config, kind, language, day, now or datetime.now(UTC))
        if built.edition_id is None:
            run.skipped.append(f"{language}: {built.skipped}")
            continue
        edition = load_edition(engine, built.edition_id)
        assert edition is not None  # just built or found
        try:
            outcome = request_send(engine, settings, edition, processes=processes, stop=stop)
        except SendInProgress as error:
            run.problems.append(f"{edition.id}: not sent here: {error}")
            continue
        except SendAborted as error:
            report = error.report
            run.problems.append(f"{edition.id}: {error}")
        else:
            assert outcome.report is not None  # waited for
            report = outcome.report
            if outcome.failed:
                run.problems.append(f"{edition.id}: batches failed: {', '.join(outcome.failed)}")
        metrics.messages.labels(DeliveryStatus.SENT).inc(report.sent)
        metrics.messages.labels(DeliveryStatus.FAILED).inc(report.failed)
        run.sent.append(report)
    return run
