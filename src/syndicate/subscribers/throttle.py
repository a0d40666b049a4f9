"""Rate limits kept in the database (the `attempt` table), so every process counts alike."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, func, insert, select

from syndicate.store.schema import attempt

WINDOW = timedelta(hours=1)


def client_key(action: str, host: str | None) -> str:
    """The attempt key of a client: its IPv4 address, or its IPv6 /64 (one home, one key)."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return f"{action}:{host or 'unknown'}"[:200]
    if address.version == 6:
        return f"{action}:{ipaddress.ip_network(f'{address}/64', strict=False)}"
    return f"{action}:{address}"


def allow(
    engine: Engine, key: str, limit: int, *, window: timedelta = WINDOW, now: datetime | None = None
) -> bool:
    """Record an attempt under `key`; True if at most `limit` were made within `window`."""
    moment = now or datetime.now(UTC)
    since = moment - window
    with engine.begin() as connection:
        # Old attempts are worth nothing: dropping them keeps the table the size of one window.
        connection.execute(delete(attempt).where(attempt.c.at < since))
        connection.execute(insert(attempt).values(key=key, at=moment))
        made = connection.execute(
            select(func.count()).where(attempt.c.key == key, attempt.c.at >= since)
        ).scalar_one()
    return int(made) <= limit
