"""Sending an edition: from this process, or from several, each sending a part.

Several processes split the recipients by subscriber id (each takes those whose id leaves its
remainder) and split the SMTP pool's connections between them, so the bound on repeats after a
crash stays `pool_size`. This process sends the first part itself and starts one process for
each other part, by the `WorkerProcesses` it is given (see syndicate.workers: they die with
it, whoever adopts them). Each is also counted in the edition's send lease, which stays taken
while any of them runs, so a send started again never runs beside an orphan of the one that
was killed.
"""

from __future__ import annotations

import logging
import multiprocessing.queues
import multiprocessing.synchronize
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.context import SpawnProcess

from sqlalchemy import Engine

from syndicate.delivery.configured import transport_from_settings
from syndicate.delivery.dkim import DkimSigner
from syndicate.delivery.ledger import (
    SendReport,
    Stop,
    delivered_count,
    pending_count,
    send_edition,
)
from syndicate.delivery.send_lease import LEASE_TTL, SendInProgress, acquire_send_lease, lease_name
from syndicate.digests.editions import load_edition
from syndicate.digests.model import Edition
from syndicate.send.plan import plan_send
from syndicate.settings import Settings
from syndicate.store.database import reading
from syndicate.store.leases import LeaseHeld, holder_name, join, release
from syndicate.workers import WorkerProcesses

log = logging.getLogger(__name__)

# Below this many recipients, starting processes costs more than it saves.
PARALLEL_THRESHOLD = 2_000
PROGRESS_EVERY = 0.5  # seconds between looks at the ledger for the other processes' progress
RELAY_EVERY = 0.2  # seconds between looks at the stop flag, to pass it on to the children

SharedEvent = multiprocessing.synchronize.Event
Results = multiprocessing.queues.Queue  # what a sending process reports: its SendReport or why not


class SendAborted(Exception):
    """A sending process stopped before its part was done; what was sent is in the ledger."""

    def __init__(self, reason: str, report: SendReport) -> None:
        """The reason and what the send had done by then."""
        super().__init__(reason)
        self.report = report


def send(
    engine: Engine,
    settings: Settings,
    edition: Edition,
    *,
    processes: WorkerProcesses | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    stop: Stop | None = None,
) -> SendReport:
    """Send `edition` to everyone the ledger lacks; `on_start` hears how many, `on_progress` more.

    A large send spreads over several processes when `processes` says how to start them;
    without, it all goes from this process. Setting `stop` ends the send early and cleanly:
    messages in flight are finished and recorded, nothing else is sent, and the report says
    `stopped`.
    """
    holder = holder_name()
    acquire_send_lease(engine, edition.id, holder)  # refuse at once if another send runs
    try:
        signer = DkimSigner.from_settings(settings.mail.dkim)
        transport = transport_from_settings(settings.mail, engine)
        plan = plan_send(engine, settings, edition, transport, signer)
        todo, _ = pending_count(reading(engine), plan)
        if on_start:
            on_start(todo)
        parts = settings.mail.processes or (
            1 if todo < PARALLEL_THRESHOLD else (os.cpu_count() or 1)
        )
        if processes is None or parts == 1:
            return send_edition(engine, plan, holder=holder, on_progress=on_progress, stop=stop)
        return _send_in_processes(
            engine, settings, edition, processes, parts, holder, on_progress, stop
        )
    finally:
        release(engine, lease_name(edition.id), holder)


def _send_in_processes(
    engine: Engine,
    settings: Settings,
    edition: Edition,
    starter: WorkerProcesses,
    processes: int,
    holder: str,
    on_progress: Callable[[int], None] | None,
    stop: Stop | None,
) -> SendReport:
    divided = _with_pool_part(settings, processes, shared=engine.dialect.name == "postgresql")
    context = starter.context
    results: Results[SendReport | str] = context.Queue()
    # The children's stop flag: set when this process is told to stop, or by a child that
    # is sent SIGTERM itself (systemd signals every process of the service).
    everyone_stop = context.Event()
    relay = _relay_stop(stop, everyone_stop)
    children = []
    for part in range(1, processes):
        arguments = (divided, edition.id, part, processes, holder, results, everyone_stop)
        children.append(starter.process(_child_sends_part, *arguments, name=f"send-{part}"))
    try:
        _start(engine, children, lease_name(edition.id), holder)
    except LeaseHeld as lost:  # only after stalling past the lease: stop everyone
        everyone_stop.set()
        for running in children:
            if running.pid is not None:
                running.join()
        relay.set()
        raise SendInProgress(str(lost)) from None
    progress = _LedgerProgress(reading(engine), edition.id, on_progress)
    started = time.perf_counter()
    outcomes: list[SendReport | str] = []
    try:
        outcomes.append(
            _send_part(engine, divided, edition, 0, processes, holder, progress.tick, everyone_stop)
        )
    except Exception as error:  # the others go on; the ledger keeps what everyone sent
        log.exception("sending part 0 failed")
        outcomes.append(f"{type(error).__name__}: {error}")
    outcomes += _gather(results, children, processes - len(outcomes), progress)
    for child in children:
        child.join()
    relay.set()  # ends the relay thread
    progress.tick(0, force=True)
    return _combined(edition.id, outcomes, processes, time.perf_counter() - started)


def _start(engine: Engine, children: list[SpawnProcess], lease: str, holder: str) -> None:
    """Start each child, and have it join the send's lease; LeaseHeld if the lease was lost."""
    for child in children:
        child.start()
        assert child.pid is not None
        join(engine, lease, holder, child.pid, LEASE_TTL)


def _gather(
    results: Results[SendReport | str],
    children: list[SpawnProcess],
    expected: int,
    progress: _LedgerProgress,
) -> list[SendReport | str]:
    """The children's outcomes as they come, progress shown meanwhile; fewer if some died."""
    outcomes: list[SendReport | str] = []
    while len(outcomes) < expected:
        try:
            outcomes.append(results.get(timeout=PROGRESS_EVERY))
        except queue.Empty:
            if not any(child.is_alive() for child in children) and results.empty():
                break
        progress.tick(0)
    return outcomes


def _combined(
    edition_id: str, outcomes: list[SendReport | str], processes: int, seconds: float
) -> SendReport:
    """One report for all the shares; SendAborted when a share failed or never reported."""
    report = SendReport(edition_id)
    report.seconds = seconds
    for outcome in outcomes:
        if isinstance(outcome, SendReport):
            report.sent += outcome.sent
            report.failed += outcome.failed
            report.skipped += outcome.skipped
            report.suppressed += outcome.suppressed  # before the send: the first part's only
            report.stopped |= outcome.stopped
            report.paused = report.paused or outcome.paused
    errors = [outcome for outcome in outcomes if isinstance(outcome, str)]
    if errors or len(outcomes) < processes:
        raise SendAborted(errors[0] if errors else "a sending process died", report)
    return report


class _LedgerProgress:
    """Turns the ledger's growing row count into progress steps, looking now and then."""

    def __init__(
        self, engine: Engine, edition_id: str, on_progress: Callable[[int], None] | None
    ) -> None:
        self.engine = engine
        self.edition_id = edition_id
        self.on_progress = on_progress
        self.seen = delivered_count(engine, edition_id)
        self.looked = time.monotonic()

    def tick(self, _steps: int = 1, *, force: bool = False) -> None:
        """Report what every process sent since the last look, at most every PROGRESS_EVERY."""
        if self.on_progress is None:
            return
        if not force and time.monotonic() - self.looked < PROGRESS_EVERY:
            return
        self.looked = time.monotonic()
        now = delivered_count(self.engine, self.edition_id)
        self.on_progress(now - self.seen)
        self.seen = now


def _with_pool_part(settings: Settings, processes: int, *, shared: bool) -> Settings:
    """Settings whose SMTP pool is one process's part of the configured one.

    The rate and the connection cap are split too, unless the store keeps them for every
    process at once (`shared`: PostgreSQL, see delivery.configured).
    """
    smtp = settings.mail.smtp
    part: dict[str, object] = {"pool_size": max(1, smtp.pool_size // processes)}
    if not shared:
        part["rate_per_second"] = smtp.rate_per_second / processes
        if smtp.max_connections:
            part["max_connections"] = max(1, smtp.max_connections // processes)
    smtp = smtp.model_copy(update=part)
    mail = settings.mail.model_copy(update={"smtp": smtp})
    return settings.model_copy(update={"mail": mail})


def _send_part(
    engine: Engine,
    settings: Settings,
    edition: Edition,
    part: int,
    parts: int,
    holder: str,
    on_progress: Callable[[int], None] | None,
    stop: Stop | None,
) -> SendReport:
    """Send part `part` of `parts` of the recipients, holding the parent's lease."""
    transport = transport_from_settings(settings.mail, engine)
    plan = plan_send(
        engine, settings, edition, transport, DkimSigner.from_settings(settings.mail.dkim)
    )
    if part:
        plan = replace(plan, suppressed=0)  # counted once, by the first part
    plan = replace(plan, part=part, parts=parts)
    return send_edition(engine, plan, holder=holder, on_progress=on_progress, stop=stop)


def _relay_stop(stop: Stop | None, to: SharedEvent) -> threading.Event:
    """Copy `stop` onto the children's flag `to` when it is set; set the result to end this."""
    done = threading.Event()

    def watch() -> None:
        while not done.wait(RELAY_EVERY):
            if stop is not None and stop.is_set():
                to.set()
                return

    threading.Thread(target=watch, name="stop-relay", daemon=True).start()
    return done


def _child_sends_part(
    engine: Engine,
    settings: Settings,
    edition_id: str,
    part: int,
    parts: int,
    holder: str,
    results: Results[SendReport | str],
    stop: SharedEvent,
) -> None:
    """The work of a sending process: its part, reported back to the parent."""
    # SIGTERM asks every sending process to stop cleanly; Ctrl-C reaches the parent, which relays it.
    signal.signal(signal.SIGTERM, lambda _signal, _frame: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        edition = load_edition(engine, edition_id)
        assert edition is not None
        results.put(_send_part(engine, settings, edition, part, parts, holder, None, stop))
    except Exception as error:  # reported to the parent, which says so and exits non-zero
        log.exception("sending part %d failed", part)
        results.put(f"{type(error).__name__}: {error}")
