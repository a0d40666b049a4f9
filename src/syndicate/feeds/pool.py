"""Worker processes for large builds: each renders or publishes a share and sends back the result.

The workers are started by the `WorkerProcesses` the build is given (see syndicate.workers),
which opens each one's engine on the store; here each only builds its renderer and publisher.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine

from syndicate.feeds.bucket import Bucket
from syndicate.feeds.contents import ContentReader, FeedContent
from syndicate.feeds.render import FeedRenderer
from syndicate.feeds.spool import Slot, SpoolReader
from syndicate.feeds.stages import Published, Publisher, Rendered, render_articles
from syndicate.feeds.targets import open_target
from syndicate.store.database import reading
from syndicate.workers import WorkerProcesses

T = TypeVar("T")


@dataclass(frozen=True)
class WorkerSetup:
    """Everything a worker needs to rebuild the build's tools on its side (picklable)."""

    now: datetime
    limit: int
    site_url: str
    feeds_url: str
    hub: str | None
    embed_frames: bool
    feeds_dir: Path
    bucket: Bucket | None
    site_titles: dict[str, str]
    home_urls: dict[str, str]
    languages: tuple[str, ...]

    def renderer(self) -> FeedRenderer:
        """The renderer the parent would use."""
        return FeedRenderer(
            site_url=self.site_url,
            feeds_url=self.feeds_url,
            hub=self.hub,
            embed_frames=self.embed_frames,
        )


class _Worker:
    """Per-process state, created once by the pool's initializer."""

    setup: WorkerSetup
    engine: Engine
    renderer: FeedRenderer
    publisher: Publisher
    spool_file: int | None = None


def _initialise(engine: Engine, setup: WorkerSetup) -> None:
    _Worker.setup = setup
    _Worker.engine = engine
    _Worker.renderer = setup.renderer()
    target = open_target(setup.feeds_dir, setup.bucket)
    target.survey()  # workers start only for large builds, where one listing repays itself
    _Worker.publisher = Publisher(_Worker.renderer, target, setup.site_titles, setup.home_urls)


def _render(pks: Sequence[int]) -> Rendered:
    setup = _Worker.setup
    with reading(_Worker.engine).connect() as connection:
        reader = ContentReader(
            connection, now=setup.now, limit=setup.limit, site_titles=setup.site_titles,
            languages=setup.languages,
        )  # fmt: skip
        return render_articles(reader, _Worker.renderer, pks)


def _publish(spool_path: str, contents: Sequence[FeedContent], slots: dict[int, Slot]) -> Published:
    if _Worker.spool_file is None:
        _Worker.spool_file = os.open(spool_path, os.O_RDONLY)
    published = _Worker.publisher.publish(contents, SpoolReader(_Worker.spool_file, slots))
    _Worker.publisher.target.flush()  # stored before the parent hears of it (and writes the index)
    return published


class BuildPool:
    """A pool of build workers; shares are handed out and results come back as they finish."""

    def __init__(self, processes: WorkerProcesses, workers: int, setup: WorkerSetup) -> None:
        """Start `workers` processes, by `processes`, prepared with `setup`."""
        self._executor = processes.pool(workers, _initialise, setup)
        self.workers = workers

    def render(self, shares: Sequence[Sequence[int]]) -> Iterator[Rendered]:
        """Render each share of article keys; yields results in order as they finish."""
        return self._run(_render, [(share,) for share in shares])

    def publish(
        self, spool_path: Path, shares: Sequence[tuple[Sequence[FeedContent], dict[int, Slot]]]
    ) -> Iterator[Published]:
        """Publish each share of feeds from the spool file; yields results in order."""
        return self._run(_publish, [(str(spool_path), *share) for share in shares])

    def _run(self, function: Callable[..., T], calls: Sequence[tuple[object, ...]]) -> Iterator[T]:
        # A few shares in flight per worker and no more: results are large (rendered
        # articles), and holding all of them would make memory grow with the archive.
        window = self.workers * 2
        pending: deque[Future[T]] = deque()
        remaining = iter(calls)
        try:
            for arguments in remaining:
                pending.append(self._executor.submit(function, *arguments))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        """Stop the workers."""
        self._executor.shutdown(wait=True, cancel_futures=True)
