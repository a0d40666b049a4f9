"""Starting worker processes: fresh (spawned), logging like their parent, each on its own store.

Workers are spawned, not forked, so one started inside the threaded service never inherits a
lock some other thread held. Each opens one engine on the store, at the start, and is handed
it: the work it runs only ever receives an engine.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing.context import SpawnContext, SpawnProcess
from typing import Any

from sqlalchemy import Engine

from syndicate.observe.logs import setup_logging
from syndicate.store.database import open_database
from syndicate.workers.orphans import die_with_parent

SPAWN: SpawnContext = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class WorkerProcesses:
    """How worker processes start: on the store at `database_url`, logging at `log_level`."""

    database_url: str
    log_level: str = "info"

    @classmethod
    def for_engine(cls, engine: Engine, log_level: str = "info") -> WorkerProcesses:
        """Workers on the same store as `engine` (its URL spelled out, password included)."""
        return cls(engine.url.render_as_string(hide_password=False), log_level)

    @property
    def context(self) -> SpawnContext:
        """The multiprocessing context the workers start in (for queues and events shared with them)."""
        return SPAWN

    def pool(
        self, size: int, initializer: Callable[..., None], *initargs: Any
    ) -> ProcessPoolExecutor:
        """A pool of `size` workers; each calls `initializer(engine, *initargs)` once at its start."""
        return ProcessPoolExecutor(
            max_workers=size,
            mp_context=SPAWN,
            initializer=_start_pool_worker,
            initargs=(self, initializer, initargs),
        )

    def process(self, target: Callable[..., None], *args: Any, name: str) -> SpawnProcess:
        """A process (not yet started) that runs `target(engine, *args)` and dies with this one.

        Pool workers are not tied to their parent's life this way: Linux's parent-death signal
        follows the thread that started a process, and a pool starts its workers from
        whichever thread first hands it work.
        """
        return SPAWN.Process(target=_run_process, args=(self, os.getpid(), target, args), name=name)

    def open_store(self) -> Engine:
        """Set up this process's logging and open its engine on the store (already migrated)."""
        setup_logging(self.log_level)
        return open_database(self.database_url, migrate=False, create=False)


def _start_pool_worker(
    processes: WorkerProcesses, initializer: Callable[..., None], initargs: tuple[Any, ...]
) -> None:
    # The engine lives as long as the worker, which ends with the pool.
    initializer(processes.open_store(), *initargs)


def _run_process(
    processes: WorkerProcesses, parent: int, target: Callable[..., None], args: tuple[Any, ...]
) -> None:
    die_with_parent(parent)
    engine = processes.open_store()
    try:
        target(engine, *args)
    finally:
        engine.dispose()
