"""What a poll of the sources did, and how a source says it failed."""

from __future__ import annotations

from dataclasses import dataclass

from syndicate.sources.ingest import IngestReport

INBOX = "inbox"
WORDPRESS = "wordpress"


class SourceError(Exception):
    """A source could not be read this time; nothing of the poll is half-applied."""

    def __init__(self, source: str, reason: str) -> None:
        """`reason` says what went wrong, ready to follow the source's name."""
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


@dataclass
class SourceReport:
    """One poll of one source, counted; filled as the poll goes, so a failure keeps its counts."""

    source: str
    read: int = 0  # files (inbox) or posts (wordpress) handed to ingest
    accepted: int = 0
    stored: int = 0  # accepted records that changed the store
    rejected: int = 0
    waiting: int = 0  # inbox files left for a later poll (still being written, locked, unreadable)
    error: str | None = None

    @property
    def failed(self) -> bool:
        """True when the poll stopped on an error."""
        return self.error is not None

    @property
    def changed(self) -> bool:
        """True when something was stored, so feeds need a build."""
        return self.stored > 0

    def add(self, ingest: IngestReport) -> None:
        """Count what one ingest did."""
        self.accepted += ingest.accepted
        self.stored += ingest.stored
        self.rejected += ingest.rejected

    def summary(self) -> str:
        """One line for people, without double quotes (it is embedded in log lines)."""
        unit = "file" if self.source == INBOX else "post"
        text = (
            f"{self.source}: {self.read} {unit}{'' if self.read == 1 else 's'} read, "
            f"{self.accepted} accepted, {self.stored} stored, {self.rejected} rejected"
        )
        if self.waiting:
            text += f", {self.waiting} waiting"
        if self.error is not None:
            text += f", failed: {self.error}"
        return text.replace('"', "'")


@dataclass(frozen=True)
class SourcesReport:
    """One poll of every configured source, in the order they were polled."""

    sources: tuple[SourceReport, ...]

    @property
    def changed(self) -> bool:
        """True when any source stored something, so feeds need a build."""
        return any(source.changed for source in self.sources)

    @property
    def failed(self) -> bool:
        """True when any source failed."""
        return any(source.failed for source in self.sources)

    @property
    def errors(self) -> dict[str, str]:
        """Each failed source's reason, by source name."""
        return {source.source: source.error for source in self.sources if source.error is not None}

    def __getitem__(self, name: str) -> SourceReport:
        """The report of the source called `name`."""
        for source in self.sources:
            if source.source == name:
                return source
        raise KeyError(name)

    def summary(self) -> str:
        """One line for people: each source's counts, separated by '; '."""
        return "; ".join(source.summary() for source in self.sources)
