"""Sending an edition: every recipient exactly once, recorded in the ledger as each is sent.

The send pages through recipients by subscriber id (never OFFSET), skips those the ledger
already has, and hands each to one of `concurrency` workers, one per transport connection.
A worker records a message's fate and waits for that record to be committed before it takes
the next recipient, so a crash at any moment leaves at most one unrecorded message per worker:
those few are sent again on the next run (the README states the bound), and nobody is skipped.

Commits are grouped: a single writer thread (delivery.recorder) commits whatever outcomes are
waiting at once, so the database sees hundreds of commits a second, not thousands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import ColumnElement, Connection, Engine, exists, func, select

from syndicate.delivery.guards import (
    Pause,
    PauseCheck,
    PauseWatch,
    SuppressedAmong,
    SuppressionRecheck,
)
from syndicate.delivery.recorder import DeliveryStatus, Gate, Outcome, Recorder
from syndicate.delivery.send_lease import acquire_send_lease, lease_name
from syndicate.observe.logs import logfmt
from syndicate.store.database import reading
from syndicate.store.schema import delivery

log = logging.getLogger(__name__)

# Outcomes a later run must not repeat; "deferred" and "failed" are tried again, since what
# failed them (a busy server, a server without SMTPUTF8, a broken key) may be mended by then.
DONE = (DeliveryStatus.SENT, DeliveryStatus.BOUNCED)


class Stop(Protocol):
    """A flag another thread or process sets to end a send early (threading or multiprocessing Event)."""

    def is_set(self) -> bool:
        """Whether the send should stop."""


class Recipient(Protocol):
    """What the ledger needs of a recipient: a stable id and an address."""

    @property
    def pk(self) -> int:
        """The subscriber's id: the order of the send and the key of the ledger."""

    @property
    def email(self) -> str:
        """Where the message goes."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One composed message, ready for the transport."""

    envelope_from: str
    recipient: str
    message_id: str
    data: bytes


@dataclass
class SendReport:
    """How a send went."""

    edition_id: str
    sent: int = 0
    failed: int = 0
    suppressed: int = 0
    skipped: int = 0
    seconds: float = 0.0
    stopped: bool = False  # asked to stop before everyone was reached: run the send again
    paused: str = ""  # why the send stopped itself (its hard-bounce rate), when it did

    def pause(self, why: Pause) -> None:
        """Stop the send as SIGTERM does (messages in flight finish), saying why, once."""
        if self.paused:
            return
        self.stopped = True
        self.paused = why.reason()
        log.warning("send paused edition=%s %s", self.edition_id, why.fields())

    def summary(self) -> str:
        """One line for people: what happened to everyone."""
        rate = self.sent / self.seconds if self.seconds else 0.0
        ending = f"; paused: {self.paused}" if self.paused else "; stopped early"
        return (
            f"{self.edition_id}: {self.sent} sent, {self.failed} failed, "
            f"{self.suppressed} suppressed, {self.skipped} skipped (already sent) "
            f"in {self.seconds:.1f}s ({rate:.0f}/s)" + (ending if self.stopped else "")
        )


class Sender(Protocol):
    """Delivers one message; raises PermanentFailure or TransientFailure."""

    def __call__(self, outgoing: Outgoing, before_delivery: Gate | None) -> Awaitable[None]:
        """Send `outgoing`, completing the delivery only once `before_delivery` is done."""


class Classifier(Protocol):
    """Sorts a failed send into bounced (permanent), deferred (passing) or failed."""

    def __call__(self, error: Exception) -> DeliveryStatus | None:
        """The outcome for `error`: bounced, deferred, failed, or None to stop the send."""


@dataclass(frozen=True)
class SendPlan:
    """Everything one send of one edition needs, wired by the caller."""

    edition_id: str
    page: Callable[[Connection, int, int], Sequence[Recipient]]  # (connection, after_pk, limit)
    compose: Callable[[Recipient], Outgoing]
    send: Sender
    classify: Classifier
    # Suppresses a bounced address (email, detail) in the transaction that records the bounce,
    # so the ledger and the suppression list never disagree, and one thread does all writing.
    on_bounce: Callable[[Connection, str, str], None]
    concurrency: int = 4
    # (still to send, already done) in one query, where the caller can count without paging.
    count: Callable[[Connection], tuple[int, int]] | None = None
    batch_size: int = 500
    suppressed: int = 0  # subscribers of the edition left out because they are suppressed
    # Closes the transport inside the send's event loop, whose connections it holds.
    finish: Callable[[], Awaitable[None]] | None = None
    # This process's part of the recipients, when several processes send one edition: those
    # whose subscriber id leaves remainder `part` divided by `parts`.
    part: int = 0
    parts: int = 1
    # The suppressed addresses among some (with their reasons), looked up again while the send
    # runs, at most every `recheck_seconds`, so a suppression made mid-send is honoured.
    suppressed_among: SuppressedAmong | None = None
    recheck_seconds: float = 0.05
    # Why the send must stop itself now (its bounce rate), asked before the first message and
    # then every `pause_every` messages or `pause_seconds`.
    pause: PauseCheck | None = None
    pause_every: int = 50
    pause_seconds: float = 5.0

    def mine(self, recipient: Recipient) -> bool:
        """Whether `recipient` is in this process's part."""
        return self.parts == 1 or recipient.pk % self.parts == self.part


def send_edition(
    engine: Engine,
    plan: SendPlan,
    *,
    holder: str,
    on_progress: Callable[[int], None] | None = None,
    stop: Stop | None = None,
    lease: str | None = None,
) -> SendReport:
    """Send the edition to every recipient the ledger does not have yet; refuse if one runs.

    `holder` is whoever took the edition's send lease (see `acquire_send_lease`); every
    process sharing the send holds and renews it under that name, and the one that took it
    releases it when all are done. Once `stop` is set, each connection finishes and records
    the message it has in flight and takes no other: the ledger is consistent, the report
    says `stopped`, and the next send goes on from there. `lease` names another lease than
    the edition's to hold instead: a batch's, when workers share the send (see send.batches).
    """
    lease = lease or lease_name(plan.edition_id)
    acquire_send_lease(engine, plan.edition_id, holder, lease)
    report = SendReport(plan.edition_id, suppressed=plan.suppressed)
    started = time.perf_counter()
    recorder = Recorder(engine, plan.edition_id, lease, holder, plan.on_bounce)
    try:
        asyncio.run(_send_all(engine, plan, report, recorder, on_progress, stop))
    finally:
        recorder.close()
        report.seconds = time.perf_counter() - started
    log.info(
        "edition sent edition=%s sent=%d failed=%d suppressed=%d skipped=%d seconds=%.1f",
        plan.edition_id, report.sent, report.failed, report.suppressed, report.skipped,
        report.seconds,
    )  # fmt: skip
    return report


def delivered_count(engine: Engine, edition_id: str) -> int:
    """How many recipients the ledger has for the edition (sent, bounced or deferred)."""
    with reading(engine).connect() as connection:
        return int(
            connection.scalar(
                select(func.count())
                .select_from(delivery)
                .where(delivery.c.edition_id == edition_id)
            )
            or 0
        )


def pending_count(engine: Engine, plan: SendPlan) -> tuple[int, int]:
    """How many recipients the send still has to reach, and how many the ledger already has."""
    todo = done = 0
    after = 0
    with reading(engine).connect() as connection:
        if plan.count is not None:
            return plan.count(connection)
        while batch := plan.page(connection, after, plan.batch_size):
            finished = _finished(connection, plan.edition_id, [r.pk for r in batch])
            done += len(finished)
            todo += len(batch) - len(finished)
            after = batch[-1].pk
    return todo, done


async def _send_all(
    engine: Engine,
    plan: SendPlan,
    report: SendReport,
    recorder: Recorder,
    on_progress: Callable[[int], None] | None,
    stop: Stop | None,
) -> None:
    work: asyncio.Queue[Recipient | None] = asyncio.Queue(maxsize=plan.concurrency * 4)
    recheck = SuppressionRecheck(engine, plan.suppressed_among, plan.recheck_seconds)
    pause = PauseWatch(engine, plan.pause, plan.pause_every, plan.pause_seconds)

    async def worker() -> None:
        # The previous message's ledger record is committed while this connection carries
        # the next message, which the transport completes (SMTP's final dot) only once that
        # record is in: a connection never has more than one delivered, unrecorded message.
        recorded: Gate | None = None
        while not _stopping(report, stop) and (recipient := await work.get()) is not None:
            outcome = await _outcome(plan, recipient, recorded, recheck)
            if recorded is not None:
                await recorded  # at once, unless this message failed before it was due
            recorded = recorder.submit(outcome)
            _count(report, outcome.status)
            pause.count()
            if on_progress:
                on_progress(1)
        if recorded is not None:
            await recorded

    async def feed() -> None:
        after: int | None = 0
        while after is not None and not _stopping(report, stop):
            batch, after = await asyncio.to_thread(_next_batch, engine, plan, after, report)
            recheck.expect(batch)
            if batch and await pause.stops_first(report.pause):
                break  # a resumed send whose edition is still over the limit sends nothing
            for recipient in batch:
                await work.put(recipient)
        for _ in workers:
            await work.put(None)

    workers = [asyncio.create_task(worker()) for _ in range(plan.concurrency)]
    feeder = asyncio.create_task(feed())
    watcher = asyncio.create_task(pause.watch(report.pause))
    try:
        # Workers end at the end of the list, or on a stop once their message is recorded;
        # a feeder still waiting for room in the queue then has nobody to wait for.
        await asyncio.gather(*workers)
        if not feeder.done():
            feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
    finally:
        for task in [*workers, feeder, watcher]:
            task.cancel()
        if plan.finish is not None:
            await plan.finish()


def _stopping(report: SendReport, stop: Stop | None) -> bool:
    """Whether the send is to stop: told to (`stop`), or paused; the report then says so."""
    if stop is not None and stop.is_set():
        report.stopped = True
    return report.stopped


async def _outcome(
    plan: SendPlan, recipient: Recipient, recorded: Gate | None, recheck: SuppressionRecheck
) -> Outcome:
    """Deliver to `recipient`, unless suppressed since the send read their page."""
    why = await recheck.reason(recipient)
    if why is not None:
        return _suppressed(plan, recipient, why)
    return await _deliver(plan, recipient, recorded)


def _count(report: SendReport, status: DeliveryStatus) -> None:
    """Count one outcome in the report."""
    if status == DeliveryStatus.SENT:
        report.sent += 1
    elif status == DeliveryStatus.SUPPRESSED:
        report.suppressed += 1
    else:
        report.failed += 1


def _suppressed(plan: SendPlan, recipient: Recipient, why: str) -> Outcome:
    """The outcome of a recipient suppressed after the send read their page: not mailed."""
    log.info(
        "message suppressed edition=%s subscriber=%d reason=%s",
        plan.edition_id, recipient.pk, logfmt(why),
    )  # fmt: skip
    return Outcome(
        recipient.pk, recipient.email, DeliveryStatus.SUPPRESSED, "", f"suppressed: {why}"
    )


def _next_batch(
    engine: Engine, plan: SendPlan, after: int, report: SendReport
) -> tuple[list[Recipient], int | None]:
    """The next page's recipients the ledger does not have yet, and where the page ended."""
    # A reader: it never holds up the ledger's own writer, nor the web's subscribe requests.
    with reading(engine).connect() as connection:
        batch = list(plan.page(connection, after, plan.batch_size))
        if not batch:
            return [], None
        finished = _finished(connection, plan.edition_id, [r.pk for r in batch])
    mine = [recipient for recipient in batch if plan.mine(recipient)]
    report.skipped += sum(1 for recipient in mine if recipient.pk in finished)
    return [recipient for recipient in mine if recipient.pk not in finished], batch[-1].pk


async def _deliver(plan: SendPlan, recipient: Recipient, before_delivery: Gate | None) -> Outcome:
    """Compose and send one message; what became of it, whatever went wrong with it alone.

    One recipient never ends a send: a message that cannot be composed, signed or carried is
    that message's outcome ("failed", or as `classify` says, with the reason), and the send
    goes on. Only what would fail for everyone alike stops it: a refused session (`classify`
    says None) or a ledger record that could not be committed.
    """
    try:
        outgoing = plan.compose(recipient)
    except Exception as error:  # this recipient's message, not the send: record it, go on
        return _failed(
            plan, recipient, DeliveryStatus.FAILED, "", f"cannot compose the message: {error}"
        )
    try:
        await plan.send(outgoing, before_delivery)
    except Exception as error:
        if _failed_gate(before_delivery):
            raise  # the previous record was not committed: nothing more may be sent
        status = plan.classify(error)
        if status is None:
            raise
        return _failed(plan, recipient, status, outgoing.message_id, str(error))
    return Outcome(recipient.pk, recipient.email, DeliveryStatus.SENT, outgoing.message_id, "")


def _failed_gate(gate: Gate | None) -> bool:
    """Whether `gate` ended in an error (its record could not be committed)."""
    return (
        gate is not None and gate.done() and not gate.cancelled() and gate.exception() is not None
    )


def _failed(
    plan: SendPlan, recipient: Recipient, status: DeliveryStatus, message_id: str, reason: str
) -> Outcome:
    """The outcome of a message that was not delivered, said in the log too."""
    detail = reason[:500]
    log.warning(
        "message failed edition=%s subscriber=%d status=%s detail=%s",
        plan.edition_id, recipient.pk, status, logfmt(detail),
    )  # fmt: skip
    return Outcome(recipient.pk, recipient.email, status, message_id, detail)


def delivered(edition_id: str, subscriber_pk: ColumnElement[int]) -> ColumnElement[bool]:
    """A condition: the ledger has the edition done (sent or bounced) for `subscriber_pk`."""
    return exists().where(
        delivery.c.edition_id == edition_id,
        delivery.c.subscriber_pk == subscriber_pk,
        delivery.c.status.in_(DONE),
    )


def _finished(connection: Connection, edition_id: str, pks: list[int]) -> set[int]:
    rows = connection.execute(
        select(delivery.c.subscriber_pk).where(
            delivery.c.edition_id == edition_id,
            delivery.c.subscriber_pk.in_(pks),
            delivery.c.status.in_(DONE),
        )
    )
    return set(rows.scalars())
