"""Sending an edition: every recipient exactly once, recorded in the ledger as each is sent.

The send pages through recipients by subscriber id (never OFFSET), skips those the ledger
already has, and hands each to one of `concurrency` workers, one per transport connection.
A worker records a message's fate and waits for that record to be committed before it takes
the next recipient, so a crash at any moment leaves at most one unrecorded message per worker:
those few are sent again on the next run (the README states the bound), and nobody is skipped.

Commits are grouped: a single writer thread commits whatever outcomes are waiting at once, so
the database sees hundreds of commits a second, not thousands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Protocol

from sqlalchemy import ColumnElement, Connection, Engine, exists, func, select

from syndicate.logs import logfmt
from syndicate.store import leases
from syndicate.store.database import reading
from syndicate.store.schema import delivery

log = logging.getLogger(__name__)

LEASE_TTL = timedelta(seconds=60)
RENEW_EVERY = 15.0  # seconds


class DeliveryStatus(StrEnum):
    """What became of one recipient's message, as the ledger stores it."""

    SENT = "sent"
    BOUNCED = "bounced"  # refused for good: the address is suppressed
    DEFERRED = "deferred"  # refused for now: tried again by the next send
    FAILED = "failed"  # not sendable (cannot be composed or carried): tried again too


# Outcomes a later run must not repeat; "deferred" and "failed" are tried again, since what
# failed them (a busy server, a server without SMTPUTF8, a broken key) may be mended by then.
DONE = (DeliveryStatus.SENT, DeliveryStatus.BOUNCED)


Gate = asyncio.Future[None]  # done once something (a ledger record) is safely committed


class Stop(Protocol):
    """A flag another thread or process sets to end a send early (threading or multiprocessing Event)."""

    def is_set(self) -> bool:
        """Whether the send should stop."""


class SendInProgress(Exception):
    """Another process is sending this edition."""


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


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one recipient's message."""

    subscriber_pk: int
    email: str
    status: DeliveryStatus
    message_id: str
    detail: str


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

    def summary(self) -> str:
        """One line for people: what happened to everyone."""
        rate = self.sent / self.seconds if self.seconds else 0.0
        return (
            f"{self.edition_id}: {self.sent} sent, {self.failed} failed, "
            f"{self.suppressed} suppressed, {self.skipped} skipped (already sent) "
            f"in {self.seconds:.1f}s ({rate:.0f}/s)" + ("; stopped early" if self.stopped else "")
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
) -> SendReport:
    """Send the edition to every recipient the ledger does not have yet; refuse if one runs.

    `holder` is whoever took the edition's send lease (see `acquire_send_lease`); every
    process sharing the send holds and renews it under that name, and the one that took it
    releases it when all are done. Once `stop` is set, each connection finishes and records
    the message it has in flight and takes no other: the ledger is consistent, the report
    says `stopped`, and the next send goes on from there.
    """
    acquire_send_lease(engine, plan.edition_id, holder)
    report = SendReport(plan.edition_id, suppressed=plan.suppressed)
    started = time.perf_counter()
    recorder = _Recorder(
        engine, plan.edition_id, lease_name(plan.edition_id), holder, plan.on_bounce
    )
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


def lease_name(edition_id: str) -> str:
    """The lease that whoever sends `edition_id` holds."""
    return f"send:{edition_id}"


def acquire_send_lease(engine: Engine, edition_id: str, holder: str) -> None:
    """Take the edition's send lease for `holder`, or raise SendInProgress naming who has it."""
    try:
        leases.acquire(engine, lease_name(edition_id), holder, LEASE_TTL)
    except leases.LeaseHeld as held:
        raise SendInProgress(str(held)) from None


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
    recorder: _Recorder,
    on_progress: Callable[[int], None] | None,
    stop: Stop | None,
) -> None:
    work: asyncio.Queue[Recipient | None] = asyncio.Queue(maxsize=plan.concurrency * 4)

    def stopping() -> bool:
        if stop is not None and stop.is_set():
            report.stopped = True
        return report.stopped

    async def worker() -> None:
        # The previous message's ledger record is committed while this connection carries
        # the next message, which the transport completes (SMTP's final dot) only once that
        # record is in: a connection never has more than one delivered, unrecorded message.
        recorded: Gate | None = None
        while not stopping() and (recipient := await work.get()) is not None:
            outcome = await _deliver(plan, recipient, recorded)
            if recorded is not None:
                await recorded  # at once, unless this message failed before it was due
            recorded = recorder.submit(outcome)
            if outcome.status == DeliveryStatus.SENT:
                report.sent += 1
            else:
                report.failed += 1
            if on_progress:
                on_progress(1)
        if recorded is not None:
            await recorded

    async def feed() -> None:
        after: int | None = 0
        while after is not None and not stopping():
            batch, after = await asyncio.to_thread(_next_batch, engine, plan, after, report)
            for recipient in batch:
                await work.put(recipient)
        for _ in workers:
            await work.put(None)

    workers = [asyncio.create_task(worker()) for _ in range(plan.concurrency)]
    feeder = asyncio.create_task(feed())
    try:
        # Workers end at the end of the list, or on a stop once their message is recorded;
        # a feeder still waiting for room in the queue then has nobody to wait for.
        await asyncio.gather(*workers)
        if not feeder.done():
            feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
    finally:
        for task in [*workers, feeder]:
            task.cancel()
        if plan.finish is not None:
            await plan.finish()


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


class _Recorder:
    """One thread that commits outcomes as they come, in groups, and keeps the lease alive."""

    def __init__(
        self,
        engine: Engine,
        edition_id: str,
        lease_name: str,
        holder: str,
        on_bounce: Callable[[Connection, str, str], None],
    ) -> None:
        self.engine = engine
        self.on_bounce = on_bounce
        self.edition_id = edition_id
        self.lease_name = lease_name
        self.holder = holder
        self.inbox: queue.Queue[tuple[Outcome, asyncio.Future[None]] | None] = queue.Queue()
        self.lost = False
        self.thread = threading.Thread(target=self._run, name="ledger", daemon=True)
        self.thread.start()

    def submit(self, outcome: Outcome) -> Gate:
        """Queue `outcome` for the ledger; the future is done once it is committed."""
        if self.lost:
            raise SendInProgress(f"lost {self.lease_name} to another process; stopping")
        done: Gate = asyncio.get_running_loop().create_future()
        self.inbox.put((outcome, done))
        return done

    def close(self) -> None:
        """Commit what is waiting, then stop."""
        self.inbox.put(None)
        self.thread.join()

    def _run(self) -> None:
        renewed = time.monotonic()
        while True:
            try:
                first = self.inbox.get(timeout=RENEW_EVERY)
            except queue.Empty:
                continue  # nothing to commit; the lease is renewed below all the same
            finally:
                if time.monotonic() - renewed > RENEW_EVERY:
                    if not leases.renew(self.engine, self.lease_name, self.holder, LEASE_TTL):
                        # Stalled past the lease and someone else took over: stop sending.
                        self.lost = True
                    renewed = time.monotonic()
            if first is None:
                return
            group = [first]
            while True:
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.inbox.put(None)  # stop after this group
                    break
                group.append(item)
            self._commit(group)

    def _commit(self, group: list[tuple[Outcome, asyncio.Future[None]]]) -> None:
        try:
            with self.engine.begin() as connection:
                _write_outcomes(connection, self.edition_id, [outcome for outcome, _ in group])
                for outcome, _ in group:
                    if outcome.status == DeliveryStatus.BOUNCED:
                        self.on_bounce(connection, outcome.email, outcome.detail)
        except BaseException as error:  # the send must stop: it cannot record what it sends
            _settle([done for _, done in group], error)
            return
        _settle([done for _, done in group], None)


def _write_outcomes(connection: Connection, edition_id: str, outcomes: list[Outcome]) -> None:
    """Upsert the outcomes' ledger rows through the driver's executemany.

    This runs hundreds of times a second in the send's own process, where every microsecond
    is taken from composing and sending: SQLAlchemy's per-row parameter handling cost more
    than the database's work. The statement is the one `upsert` makes, written out once; the
    shared timestamp goes through the column's own type once a group.
    """
    dialect = connection.dialect
    processor = delivery.c.at.type.bind_processor(dialect)
    now = datetime.now(UTC)
    at = processor(now) if processor is not None else now
    rows = [
        (edition_id, outcome.subscriber_pk, outcome.status, outcome.message_id, outcome.detail, at)
        for outcome in outcomes
    ]
    connection.exec_driver_sql(_upsert_sql(dialect.paramstyle), rows)


@cache
def _upsert_sql(paramstyle: str) -> str:
    columns = ("edition_id", "subscriber_pk", "status", "message_id", "detail", "at")
    marks = ", ".join(["?" if paramstyle == "qmark" else "%s"] * len(columns))
    updates = ", ".join(f"{name} = excluded.{name}" for name in columns[2:])
    # Made of the constant names above only; every value is a parameter.
    insert = f"INSERT INTO delivery ({', '.join(columns)}) VALUES ({marks}) "  # noqa: S608
    return insert + f"ON CONFLICT (edition_id, subscriber_pk) DO UPDATE SET {updates}"


def _settle(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    """Resolve a committed group's futures, waking each event loop once, not once a message."""
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for done in futures:
        by_loop.setdefault(done.get_loop(), []).append(done)
    for loop, waiting in by_loop.items():
        loop.call_soon_threadsafe(_resolve_all, waiting, error)


def _resolve_all(futures: list[asyncio.Future[None]], error: BaseException | None) -> None:
    for done in futures:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
