"""`syndicate status`: what the scheduler is doing, read from the database by any process.

It shows who holds the scheduler lease, each job's last run and next run, the last feed build,
the last sends, the cluster (queue.cluster: jobs by kind, workers, stalled and failed jobs,
running sends; on PostgreSQL only), and the deliverability rates of recent editions and days
(feedback.rates). Next runs are worked out from the settings, the same rules the scheduler
uses; a poll's next run follows its last one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, Engine, case, func, select

from syndicate.delivery.recorder import DeliveryStatus
from syndicate.feedback.rates import Rates, rate_table, recent_days, recent_editions
from syndicate.queue.cluster import Cluster, JobLine, read_cluster
from syndicate.service import bounce_mailboxes
from syndicate.service.jobstate import JobRun, last_runs
from syndicate.service.requests import DigestRequest, pending_requests
from syndicate.service.scheduler import LEASE_NAME, TIDY_HOURS, digest_triggers
from syndicate.settings import Settings
from syndicate.store.database import reading
from syndicate.store.schema import delivery, lease, state

RATE_EDITIONS = 6  # editions, and days, whose deliverability rates status shows
RATE_DAYS = 7


@dataclass(frozen=True, slots=True)
class JobStatus:
    """One job's line: what it is, how its last run ended, when it runs next."""

    job: str
    when: str  # "every 30 s", "07:00", "mon 07:00"
    last: JobRun | None
    next_run: datetime | None
    requested: DigestRequest | None = None  # asked for by `syndicate digest run`, not yet taken


@dataclass(frozen=True, slots=True)
class SendStatus:
    """One edition's ledger, summed up."""

    edition_id: str
    sent: int
    bounced: int
    deferred: int
    failed: int  # could not be composed or carried (an SMTPUTF8 address, say); tried again
    last_at: datetime
    suppressed: int = 0  # suppressed while the send ran, before their message was composed


@dataclass(frozen=True, slots=True)
class Status:
    """Everything `syndicate status` prints."""

    holder: str | None
    lease_until: datetime | None
    jobs: list[JobStatus]
    built_at: datetime | None
    sends: list[SendStatus]
    edition_rates: list[Rates] = field(default_factory=list)  # newest sent editions first
    day_rates: list[Rates] = field(default_factory=list)  # the last days (UTC), newest first
    cluster: Cluster | None = None  # the work queue's view; None on SQLite, which has none


def read_status(engine: Engine, settings: Settings, now: datetime | None = None) -> Status:
    """The scheduler's state as recorded in the database."""
    now = now or datetime.now(UTC)
    runs = last_runs(engine)
    schedule = settings.schedule
    poll = runs.get("poll")
    poll_next = (poll.started if poll else now) + timedelta(seconds=schedule.poll_seconds)
    jobs = [JobStatus("poll", f"every {schedule.poll_seconds} s", poll, poll_next)]
    tidy = runs.get("tidy")
    tidy_next = (tidy.started if tidy else now) + timedelta(hours=TIDY_HOURS)
    jobs.append(JobStatus("tidy", f"every {TIDY_HOURS} h", tidy, tidy_next))
    if bounce_mailboxes.configured(settings):
        every = settings.bounces.poll_seconds
        bounces = runs.get("bounces")
        bounces_next = (bounces.started if bounces else now) + timedelta(seconds=every)
        jobs.append(JobStatus("bounces", f"every {every} s", bounces, bounces_next))
    requests = {request.kind: request for request in pending_requests(engine)}
    for kind, trigger in digest_triggers(settings).items():
        when = getattr(schedule, f"{kind}_at")
        next_run = trigger.get_next_fire_time(None, now)
        last = runs.get(f"digest-{kind}")
        jobs.append(JobStatus(f"digest-{kind}", when, last, next_run, requests.get(kind)))
    with reading(engine).connect() as connection:
        holder = connection.execute(
            select(lease.c.holder, lease.c.expires_at).where(lease.c.name == LEASE_NAME)
        ).one_or_none()
        built = connection.scalar(select(state.c.value).where(state.c.name == "built_at"))
        sends = [
            SendStatus(
                row.edition_id,
                row.sent or 0,
                row.bounced or 0,
                row.deferred or 0,
                row.failed or 0,
                row.at,
                row.suppressed or 0,
            )
            for row in connection.execute(
                select(
                    delivery.c.edition_id,
                    *(_count(outcome) for outcome in DeliveryStatus),
                    func.max(delivery.c.at).label("at"),
                )
                .group_by(delivery.c.edition_id)
                .order_by(func.max(delivery.c.at).desc())
                .limit(6)
            )
        ]
    live = holder if holder is not None and holder.expires_at > now else None
    return Status(
        live.holder if live else None,
        live.expires_at if live else None,
        jobs,
        datetime.fromisoformat(built) if built else None,
        sends,
        recent_editions(engine, RATE_EDITIONS),
        recent_days(engine, RATE_DAYS, now),
        read_cluster(engine, settings.queue.stalled_seconds),
    )


def _count(outcome: DeliveryStatus) -> ColumnElement[int]:
    return func.sum(case((delivery.c.status == outcome, 1), else_=0)).label(outcome.value)


def format_status(status: Status, settings: Settings) -> str:
    """The status as lines for people, times in the configured zone."""
    zone = settings.schedule.zone

    def at(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S %Z") if moment else "never"

    lines = [
        f"Scheduler: running as {status.holder} (lease until {at(status.lease_until)})"
        if status.holder
        else "Scheduler: not running (no process holds the scheduler lease)",
        f"Times in {settings.schedule.timezone}.",
        "",
    ]
    for job in status.jobs:
        lines.append(f"{job.job}  ({job.when})")
        if job.last:
            took = (job.last.finished - job.last.started).total_seconds()
            lines.append(
                f"  last run  {at(job.last.started)}  {job.last.result}  ({took:.1f} s)"
                + (f"  due {at(job.last.scheduled)}" if job.job.startswith("digest") else "")
            )
            lines.append(f"            {job.last.detail}")
        else:
            lines.append("  last run  never")
        lines.append(f"  next run  {at(job.next_run)}")
        if job.requested:
            lines.append(
                f"  requested due {at(job.requested.due)}  (asked {at(job.requested.asked)}; "
                "the scheduler takes it at its next look)"
            )
    lines += ["", f"Last feed build: {at(status.built_at)}", "Last sends:"]
    lines += [
        f"  {send.edition_id}  {send.sent} sent, {send.bounced} bounced, "
        f"{send.deferred} deferred, {send.failed} failed, {send.suppressed} suppressed; "
        f"last at {at(send.last_at)}"
        for send in status.sends
    ] or ["  none"]
    lines += ["", *cluster_lines(status.cluster, at)]
    lines += [
        "",
        "Deliverability (shares of sent; hard bounces include refusals while sending):",
        *rate_table("edition", status.edition_rates),
        *rate_table("day (UTC)", status.day_rates),
    ]
    return "\n".join(lines) + "\n"


def cluster_lines(cluster: Cluster | None, at: Callable[[datetime | None], str]) -> list[str]:
    """The work queue for people: jobs by kind, workers, stalled and failed jobs, running sends."""
    if cluster is None:
        return ["Cluster: no work queue on SQLite; `syndicate run` does all the work itself."]
    width = max(len("jobs"), *(len(kind) for kind in cluster.kinds))
    lines = ["Cluster (the work queue in PostgreSQL):"]
    lines.append(f"  {'jobs':<{width}}  waiting  running  failed")
    lines += [
        f"  {kind:<{width}}  {cluster.count(kind, 'todo'):>7}  {cluster.count(kind, 'doing'):>7}"
        f"  {cluster.count(kind, 'failed'):>6}"
        for kind in cluster.kinds
    ]
    lines.append(f"  workers: {len(cluster.live_workers)} live")
    lines += [
        f"    worker {worker.label}  last heartbeat {worker.age:.0f} s ago"
        if worker.live
        else f"    worker {worker.label}  no heartbeat for {worker.age:.0f} s: presumed dead"
        for worker in cluster.workers
    ]
    lines.append(
        f"  stalled jobs: {len(cluster.stalled)}"
        + (" (a live worker queues them again at its next look)" if cluster.stalled else "")
    )
    lines += [f"    {_job_line(job, cluster)}" for job in cluster.stalled]
    shown = (
        f" (the newest {len(cluster.failed)} shown)"
        if cluster.failed_count > len(cluster.failed)
        else ""
    )
    lines.append(f"  failed jobs: {cluster.failed_count}{shown}")
    lines += [
        f"    {_job_line(job, cluster)}  failed {at(job.at)} after {job.attempts} "
        + ("attempt" if job.attempts == 1 else "attempts")
        for job in cluster.failed
    ]
    lines.append("  sends running:" + ("" if cluster.sends else " none"))
    for send in cluster.sends:
        reach = (
            f"{send.sent} of {send.audience} sent ({send.ratio * 100:.1f} %)"
            if send.audience is not None
            else f"{send.sent} sent (the edition is gone)"
        )
        batches = ", ".join(f"{count} {state}" for state, count in send.batches.items())
        workers = ", ".join(cluster.worker_label(each) for each in send.workers)
        on = f"; on workers {workers}" if send.workers else ""
        lines.append(f"    {send.edition_id}  {reach}; batches {batches}{on}")
    return lines


def _job_line(job: JobLine, cluster: Cluster) -> str:
    worker = f"  worker {cluster.worker_label(job.worker_id)}" if job.worker_id is not None else ""
    return f"job {job.id} {job.task}{worker}  {job.summary}".rstrip()
