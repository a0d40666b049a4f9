"""Digest runs an operator asks for with `syndicate digest run`, carried by the database.

The command writes one `state` row a kind (`request.digest-daily`) holding the send time to
run it for. The scheduler holding the lease looks every poll interval and takes each row by
deleting it, so however many processes look, one runs it; the run is then recorded like a
scheduled one. Asking again before it is taken replaces the time asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Engine, delete, select

from syndicate.domain.periods import KINDS, Kind
from syndicate.store.database import reading
from syndicate.store.schema import state
from syndicate.store.sql import upsert

PREFIX = "request.digest-"


@dataclass(frozen=True, slots=True)
class DigestRequest:
    """A digest job asked for: its kind, the send time to run it for, and when it was asked."""

    kind: Kind
    due: datetime
    asked: datetime

    def to_json(self) -> str:
        """The request as the JSON stored in its state row."""
        due, asked = self.due.astimezone(UTC), self.asked.astimezone(UTC)
        return json.dumps({"due": due.isoformat(), "asked": asked.isoformat()})

    @classmethod
    def from_row(cls, name: str, value: str) -> DigestRequest:
        """A request read back from its state row."""
        data = json.loads(value)
        kind = _kind(name.removeprefix(PREFIX))
        return cls(kind, datetime.fromisoformat(data["due"]), datetime.fromisoformat(data["asked"]))


def _kind(text: str) -> Kind:
    for kind in KINDS:
        if kind == text:
            return kind
    raise ValueError(f"{PREFIX}{text}: not a digest kind")


def request_digest(engine: Engine, request: DigestRequest) -> None:
    """Ask the scheduler to run `request.kind`'s digest job for `request.due`."""
    row = {"name": PREFIX + request.kind, "value": request.to_json()}
    with engine.begin() as connection:
        upsert(connection, state, [row], ["name"])


def pending_requests(engine: Engine) -> list[DigestRequest]:
    """The requests no scheduler has taken yet, by kind."""
    return [DigestRequest.from_row(name, value) for name, value in _rows(engine)]


def take_requests(engine: Engine) -> list[DigestRequest]:
    """Remove and return the pending requests; a row another process took first is not in it."""
    taken = []
    for name, value in _rows(engine):
        with engine.begin() as connection:
            # Taken only as it was read: one asked again meanwhile is left for the next look.
            gone = connection.execute(
                delete(state).where(state.c.name == name, state.c.value == value)
            )
        if gone.rowcount == 1:
            taken.append(DigestRequest.from_row(name, value))
    return taken


def _rows(engine: Engine) -> list[tuple[str, str]]:
    with reading(engine).connect() as connection:
        rows = connection.execute(
            select(state.c.name, state.c.value)
            .where(state.c.name.startswith(PREFIX))
            .order_by(state.c.name)
        )
        return [(name, value) for name, value in rows]
