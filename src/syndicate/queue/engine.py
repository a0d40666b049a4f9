"""The procrastinate App on a store: one per process, reaching the store's own PostgreSQL."""

from __future__ import annotations

from procrastinate import App, PsycopgConnector
from sqlalchemy.engine import URL, make_url

# A worker holds one connection to LISTEN for new jobs, one for its job and one for its
# heartbeat; a process that only defers needs one. More would sit idle on the server.
POOL_MIN, POOL_MAX = 1, 4


class QueueUnavailable(Exception):
    """The store is not PostgreSQL, so there is no queue: the work runs in-process instead."""


def uses_queue(url: str | URL) -> bool:
    """Whether the store at `url` (a string, or an engine's URL) has a work queue (PostgreSQL)."""
    return make_url(url).get_backend_name() == "postgresql"


def queue_app(url: str) -> App:
    """A procrastinate App on the PostgreSQL store at `url` (a SQLAlchemy URL), not yet open.

    No job is registered: a worker registers them (`register_jobs`) with what they need, and
    a process that only asks for work defers by name.
    """
    if not uses_queue(url):
        raise QueueUnavailable(f"no work queue on {make_url(url).get_backend_name()}")
    # psycopg takes a libpq URL: the same one without SQLAlchemy's "+psycopg" driver suffix.
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    connector = PsycopgConnector(conninfo=conninfo, min_size=POOL_MIN, max_size=POOL_MAX)
    return App(connector=connector)
