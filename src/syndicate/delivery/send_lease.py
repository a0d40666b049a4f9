"""The send lease: one edition is sent by one holder at a time (its processes share the lease)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine

from syndicate.store import leases

LEASE_TTL = timedelta(seconds=60)
RENEW_EVERY = 15.0  # seconds


class SendInProgress(Exception):
    """Another process is sending this edition."""


def lease_name(edition_id: str) -> str:
    """The lease that whoever sends `edition_id` holds."""
    return f"send:{edition_id}"


def batch_lease_name(edition_id: str, first: int) -> str:
    """The lease of one batch of a send (the subscribers from id `first`), run by a worker."""
    return f"send:{edition_id}:{first}"


def acquire_send_lease(
    engine: Engine, edition_id: str, holder: str, lease: str | None = None
) -> None:
    """Take the edition's send lease (or `lease`, a batch's) for `holder`, or raise SendInProgress."""
    try:
        leases.acquire(engine, lease or lease_name(edition_id), holder, LEASE_TTL)
    except leases.LeaseHeld as held:
        raise SendInProgress(str(held)) from None
