"""Which workers are alive: those whose heartbeat, on the database's clock, is recent enough."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

_LIVE_WORKERS = text(
    "SELECT count(*) FROM procrastinate_workers"
    " WHERE last_heartbeat > now() - make_interval(secs => :seconds)"
)


def count_live_workers(source: Engine | Connection, stalled_seconds: float) -> int:
    """How many workers beat within `stalled_seconds` ([queue] stalled_seconds); the rest are dead."""
    if isinstance(source, Connection):
        return int(source.scalar(_LIVE_WORKERS, {"seconds": stalled_seconds}) or 0)
    with source.connect() as connection:
        return int(connection.scalar(_LIVE_WORKERS, {"seconds": stalled_seconds}) or 0)
