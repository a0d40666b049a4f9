"""The scheduler of `syndicate run`: poll the sources, rebuild the feeds, send the digests.

APScheduler (3.x) fires the jobs in worker threads. Only one process per database acts: each
`syndicate run` serves HTTP, but the jobs do their work only in the process holding the
`scheduler` lease; the others stand by and take over when its holder stops renewing.

Digests fire at their local time in `[schedule] timezone` (cron rules, so daylight-saving
changes are followed). A digest whose time passed while no scheduler ran is caught up when one
takes the lease: the most recent missed time of each kind, once, and only a time after the
service first ran on the database (remembered when a scheduler first takes the lease); and a
digest run that was stopped goes on (editions are idempotent by id, the ledger by recipient,
so a catch-up of something already sent sends nothing).

An operator can ask for a digest now (`syndicate digest run`): a request row in the database
that the leader takes on its next look, every poll interval (see service.requests).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from syndicate.domain.periods import Kind
from syndicate.feeds.build import build_feeds
from syndicate.feeds.config import FeedConfig
from syndicate.feeds.websub import announce_build
from syndicate.observe import metrics
from syndicate.observe.logs import logfmt
from syndicate.queue import request_feed_build, uses_queue
from syndicate.service import bounce_mailboxes
from syndicate.service.digests import run_digest
from syndicate.service.jobstate import JobResult, JobRun, first_run, last_runs, record_run
from syndicate.service.requests import DigestRequest, take_requests
from syndicate.service.send_times import digest_trigger, previous_fire
from syndicate.settings import Settings
from syndicate.sources.polling import poll_sources
from syndicate.sources.report import SourcesReport
from syndicate.store import leases
from syndicate.subscribers.registry import forget_unconfirmed
from syndicate.workers import WorkerProcesses

log = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
LEASE_TTL = timedelta(seconds=60)
LEASE_EVERY = 15  # seconds between renewals (and, on standby, attempts to take over)
# A digest that could not start on time (the process was busy or paused) still goes out if
# it can start within this long; later than that, the next catch-up handles it.
DIGEST_GRACE = 6 * 3600
TIDY_HOURS = 6  # how often unconfirmed subscriptions past their link's life are forgotten
UNCONFIRMED_GRACE_HOURS = 24  # kept this long after the link expires, for support questions


def digest_triggers(settings: Settings) -> dict[Kind, CronTrigger]:
    """The cron rule of each enabled digest, in the configured zone."""
    schedule = settings.schedule
    return {
        kind: digest_trigger(kind, schedule.send_time(kind), schedule.zone)
        for kind in settings.digests.kinds
    }


def missed_digests(
    triggers: dict[Kind, CronTrigger],
    runs: dict[str, JobRun],
    now: datetime,
    first_run: datetime,
) -> list[tuple[Kind, datetime]]:
    """The digests owed at `now`, each with the send time to run it for.

    A kind is owed its latest due time when that fell after the service first ran and has no
    finished run; a time before the first run belongs to no subscriber's expectations (a new
    database, a restored one). Only the latest time of each kind counts: a newer edition
    supersedes an older one. A run that began but did not finish (stopped, failed) is owed
    whenever it began, unless a newer due time supersedes it: its send goes on.
    """
    missed = []
    for kind, trigger in triggers.items():
        due = previous_fire(kind, trigger, now)
        last = runs.get(f"digest-{kind}")
        if last is not None and (due is None or last.scheduled >= due):
            if not last.ok:
                missed.append((kind, last.scheduled))
        elif due is not None and due > first_run:
            missed.append((kind, due))
    return missed


class Scheduler:
    """The jobs of one `syndicate run`, acting only while this process holds the lease."""

    def __init__(
        self, engine: Engine, settings: Settings, processes: WorkerProcesses | None = None
    ) -> None:
        """Prepare (not start) the jobs for `settings`; builds and sends may use `processes`."""
        self.engine = engine
        self.settings = settings
        self.processes = processes
        self.stop = threading.Event()  # set on SIGTERM: jobs finish what is in flight and end
        self.holder = leases.holder_name()
        self.leading = False
        self._renewed = 0.0  # monotonic time the lease was last taken or renewed
        self.triggers = digest_triggers(settings)
        self._digests = threading.Lock()  # one digest send at a time shares the SMTP pool
        self._jobs = BackgroundScheduler(
            timezone=settings.schedule.zone,
            executors={
                "default": ThreadPoolExecutor(max_workers=4),
                # Renewal never waits behind a long send or build.
                "lease": ThreadPoolExecutor(max_workers=1),
            },
            job_defaults={"coalesce": True, "max_instances": 1},
        )

    def start(self) -> None:
        """Try to take the lease now, then run the jobs in the background."""
        self.keep_lease()
        poll = self.settings.schedule.poll_seconds
        now = datetime.now(UTC)
        jobs = self._jobs
        jobs.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
        jobs.add_job(
            self.keep_lease, IntervalTrigger(seconds=LEASE_EVERY), id="lease", executor="lease"
        )
        # A poll later than its whole interval is pointless: the next one is due anyway.
        jobs.add_job(
            self.poll, IntervalTrigger(seconds=poll), id="poll", misfire_grace_time=poll,
            next_run_time=now,
        )  # fmt: skip
        for kind, trigger in self.triggers.items():
            jobs.add_job(
                self.digest, trigger, args=[kind], id=f"digest-{kind}",
                misfire_grace_time=DIGEST_GRACE,
            )  # fmt: skip
        jobs.add_job(
            self.take_requests, IntervalTrigger(seconds=poll), id="requests",
            misfire_grace_time=poll,
        )  # fmt: skip
        jobs.add_job(
            self.tidy, IntervalTrigger(hours=TIDY_HOURS), id="tidy", misfire_grace_time=None
        )
        if bounce_mailboxes.configured(self.settings):
            every = self.settings.bounces.poll_seconds
            jobs.add_job(
                self.bounces, IntervalTrigger(seconds=every), id="bounces",
                misfire_grace_time=every, next_run_time=now,
            )  # fmt: skip
        jobs.start()
        log.info(
            "scheduler started holder=%s leading=%s poll_seconds=%d digests=%s timezone=%s",
            self.holder, self.leading, poll, ",".join(self.triggers),
            self.settings.schedule.timezone,
        )  # fmt: skip

    def shutdown(self) -> None:
        """Stop: running jobs finish the work in flight, then the lease is given up."""
        self.stop.set()
        started = time.monotonic()
        if self._jobs.running:
            self._jobs.shutdown(wait=True)
        if self.leading:
            leases.release(self.engine, LEASE_NAME, self.holder)
            self.leading = False
        log.info("scheduler stopped seconds=%.1f", time.monotonic() - started)

    # -- the lease -------------------------------------------------------------------------

    def keep_lease(self) -> None:
        """Renew the lease, or (on standby) try to take it; a new holder catches up."""
        if self.stop.is_set():
            return
        try:
            self._keep_lease()
        except SQLAlchemyError as error:
            # The database is unreachable: the lease runs out unrenewed, so stop acting before
            # it does, when another process may take it.
            if self.leading and time.monotonic() - self._renewed > LEASE_TTL.total_seconds() / 2:
                self.leading = False
                log.error("scheduler lease not renewed holder=%s; standing by", self.holder)
            log.error("scheduler lease check failed error=%s", logfmt(str(error).splitlines()[0]))

    def _keep_lease(self) -> None:
        if self.leading:
            if leases.renew(self.engine, LEASE_NAME, self.holder, LEASE_TTL):
                self._renewed = time.monotonic()
            else:
                self.leading = False
                log.error("scheduler lease lost holder=%s; standing by", self.holder)
            return
        try:
            leases.acquire(self.engine, LEASE_NAME, self.holder, LEASE_TTL)
        except leases.LeaseHeld as held:
            log.info("scheduler standby holder=%s reason=%s", self.holder, logfmt(held))
            return
        self._renewed = time.monotonic()
        self.leading = True
        log.info("scheduler lease taken holder=%s", self.holder)
        if self._jobs.running:
            self._jobs.modify_job("poll", next_run_time=datetime.now(UTC))
        self.catch_up()

    # -- jobs ------------------------------------------------------------------------------

    def poll(self) -> None:
        """Read the sources, rebuild the feeds that changed, and tell the WebSub hub."""
        self._run("poll", datetime.now(UTC), self._poll)

    def _poll(self) -> tuple[JobResult, str]:
        sources = poll_sources(self.engine, self.settings)
        config = FeedConfig.from_settings(self.settings)
        if uses_queue(self.settings.database.url):
            return self._request_build(sources, config)
        build = build_feeds(self.engine, config, processes=self.processes)
        announced = announce_build(config, build) if build.changed else None
        detail = f"{sources.summary()}; {build.summary()}"
        if announced is not None:
            detail += f"; {announced.summary()}"
        busy = sources.changed or build.written or build.removed or sources.failed
        (log.info if busy else log.debug)("poll finished detail=%s", logfmt(detail))
        return (JobResult.ERROR if sources.failed or build.failed else JobResult.OK), detail

    def _request_build(self, sources: SourcesReport, config: FeedConfig) -> tuple[JobResult, str]:
        """Ask the workers for the build (PostgreSQL): the one that completes it tells the hub."""
        request = request_feed_build(self.engine, config)
        asked = (
            "feed build joined one waiting"
            if request.collapsed
            else f"feed build queued as job {request.job_id}"
        )
        detail = f"{sources.summary()}; {asked}"
        (log.info if sources.changed or sources.failed else log.debug)(
            "poll finished detail=%s", logfmt(detail)
        )
        return (JobResult.ERROR if sources.failed else JobResult.OK), detail

    def tidy(self) -> None:
        """Forget subscriptions whose confirmation links expired unused."""
        self._run("tidy", datetime.now(UTC), self._tidy)

    def _tidy(self) -> tuple[JobResult, str]:
        hours = self.settings.subscribers.confirm_hours + UNCONFIRMED_GRACE_HOURS
        forgotten = forget_unconfirmed(self.engine, datetime.now(UTC) - timedelta(hours=hours))
        if forgotten:
            log.info("subscribers forgotten unconfirmed=%d older_than_hours=%d", forgotten, hours)
        return JobResult.OK, f"{forgotten} unconfirmed subscriptions forgotten"

    def bounces(self) -> None:
        """Read the bounce mailboxes ([bounces] maildir, [bounces.imap]) and record the reports."""
        self._run("bounces", datetime.now(UTC), self._bounces)

    def _bounces(self) -> tuple[JobResult, str]:
        readings = bounce_mailboxes.read_bounce_mailboxes(self.engine, self.settings, self.stop)
        detail = "; ".join(reading.summary() for reading in readings)
        ok = all(reading.ok for reading in readings)
        return (JobResult.OK if ok else JobResult.ERROR), detail

    def digest(self, kind: Kind, moment: datetime | None = None) -> None:
        """Build and send the `kind` digest due at `moment` (by default the latest due)."""
        moment = moment or previous_fire(kind, self.triggers[kind], datetime.now(UTC))
        if moment is None or not self.leading:
            return
        lateness = (datetime.now(UTC) - moment).total_seconds()
        metrics.job_lag.labels(f"digest-{kind}").set(max(0.0, lateness))
        # Even when stopping: the run then sends nothing and is recorded stopped, so the next
        # start owes it (a request taken from the database would otherwise be lost).
        work = functools.partial(self._digest, kind, moment)
        self._run(f"digest-{kind}", moment, work, when_stopping=True)

    def _digest(self, kind: Kind, moment: datetime) -> tuple[JobResult, str]:
        with self._digests:
            run = run_digest(
                self.engine, self.settings, kind, moment, stop=self.stop, processes=self.processes
            )
        log.info(
            "digest finished kind=%s due=%s result=%s%s detail=%s",
            kind, moment.isoformat(), run.result,
            f" not_reached={','.join(run.unreached)}" if run.unreached else "",
            logfmt(run.summary()),
        )  # fmt: skip
        return run.result, run.summary()

    def catch_up(self, now: datetime | None = None) -> list[tuple[Kind, datetime]]:
        """Queue each digest owed (see missed_digests) and return them."""
        now = now or datetime.now(UTC)
        since = first_run(self.engine, now)
        missed = missed_digests(self.triggers, last_runs(self.engine), now, since)
        for kind, due in missed:
            log.info("digest catch-up kind=%s due=%s", kind, due.isoformat())
            self._jobs.add_job(
                self.digest, args=[kind, due], id=f"catch-up-{kind}", replace_existing=True,
                misfire_grace_time=None,
            )  # fmt: skip
        return missed

    def take_requests(self) -> list[DigestRequest]:
        """Queue the digest runs an operator asked for (`syndicate digest run`); return them."""
        if not self.leading or self.stop.is_set():
            return []
        taken = take_requests(self.engine)
        for request in taken:
            if request.kind not in self.triggers:  # asked for, then the setting changed
                log.error(
                    "digest request ignored kind=%s reason=not_in_digests_kinds", request.kind
                )
                continue
            log.info("digest requested kind=%s due=%s", request.kind, request.due.isoformat())
            self._jobs.add_job(
                self.digest, args=[request.kind, request.due], id=f"requested-{request.kind}",
                replace_existing=True, misfire_grace_time=None,
            )  # fmt: skip
        return taken

    def _run(
        self,
        job: str,
        due: datetime,
        work: Callable[[], tuple[JobResult, str]],
        *,
        when_stopping: bool = False,
    ) -> None:
        """Run `work` if this process leads (and is not stopping), recording its outcome."""
        if not self.leading or (self.stop.is_set() and not when_stopping):
            return
        started = datetime.now(UTC)
        try:
            result, detail = work()
        except Exception as error:  # one failed run must not stop the schedule
            log.exception("job failed job=%s", job)
            result, detail = JobResult.ERROR, f"{type(error).__name__}: {error}"
        ok = result == JobResult.OK
        metrics.job_runs.labels(job, JobResult.OK if ok else JobResult.ERROR).inc()
        record_run(self.engine, JobRun(job, due, started, datetime.now(UTC), result, detail[:2000]))

    def _submitted(self, event: JobSubmissionEvent) -> None:
        """Note how late a poll started (a digest notes it against its send time)."""
        if event.job_id == "poll" and event.scheduled_run_times:
            late = datetime.now(UTC) - event.scheduled_run_times[-1]
            metrics.job_lag.labels("poll").set(max(0.0, late.total_seconds()))
