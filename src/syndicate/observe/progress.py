"""Progress bars for long commands, on standard error and only when it is a terminal."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)


class ProgressBar:
    """A rich progress display that follows the build's phases (see feeds.builder.Progress)."""

    def __init__(self) -> None:
        """A display on standard error; silent when that is not a terminal."""
        console = Console(stderr=True)
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self._task: TaskID | None = None

    def __enter__(self) -> ProgressBar:
        """Show the display."""
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Take the display down."""
        self._progress.stop()

    def phase(self, description: str, total: int | None) -> None:
        """Start a new bar; `total` None shows a spinner only."""
        if self._task is not None:
            self._progress.update(self._task, completed=self._progress.tasks[-1].total or 0)
        self._task = self._progress.add_task(description, total=total)

    def advance(self, steps: int = 1) -> None:
        """Move the current bar on."""
        if self._task is not None:
            self._progress.advance(self._task, steps)
