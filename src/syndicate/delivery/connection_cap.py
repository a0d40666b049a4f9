"""A cap on the SMTP connections open at once across every process sharing the database.

`max_connections` slots, each a PostgreSQL session advisory lock (store.shared_limits) held on
one database connection of this process's for as long as one SMTP connection may be open. A
process that dies loses its database session, and PostgreSQL frees its slots with it: nothing
to clean up, however it ended. The SMTP transport takes a slot before it opens a connection
and gives its slots back after it closed them all.

A process waits for its first slot (saying so once); past its first, it only takes a slot that
is free at once, now and then, and otherwise sends on the connections it has. A process
never waits for more while holding some, so processes holding slots never wait on each other.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Protocol

from sqlalchemy import Connection, Engine

from syndicate.store.shared_limits import free_slots, slot_key, try_slot

log = logging.getLogger(__name__)

LOOK_EVERY = 0.1  # seconds between looks for a free slot while waiting for the first


class ConnectionSlots(Protocol):
    """Permission to hold SMTP connections open, one slot each."""

    async def try_take(self) -> bool:
        """Take a slot if one is free now."""
        ...

    async def take(self) -> None:
        """Take a slot, waiting until one is free."""
        ...

    async def give_back(self) -> None:
        """Give back every slot held (their connections are closed)."""
        ...


class SharedSlots:
    """`cap` slots called `name`, shared by every process using the PostgreSQL `engine`."""

    def __init__(self, engine: Engine, name: str, cap: int) -> None:
        """Slots for the connections to the server called `name`."""
        self.name = name
        self.cap = cap
        self.held: list[int] = []
        self._engine = engine
        self._key = slot_key(name)
        self._connection: Connection | None = None  # the session holding the locks
        self._said_waiting = False
        # The session does one thing at a time, in a worker thread. A thread's lock, not the
        # loop's: a caller cancelled while its thread runs must not let the next one in early.
        self._session = threading.Lock()

    async def try_take(self) -> bool:
        """Take a slot if one is free now."""
        return await asyncio.to_thread(self._try) is not None

    async def take(self) -> None:
        """Take a slot, waiting until one is free."""
        while not await self.try_take():
            if not self._said_waiting:
                self._said_waiting = True
                log.info("smtp_connections_wait server=%s max_connections=%d", self.name, self.cap)
            await asyncio.sleep(LOOK_EVERY)

    async def give_back(self) -> None:
        """Give back every slot held, and the database connection that held them."""
        await asyncio.to_thread(self._close)

    def _try(self) -> int | None:
        with self._session:
            if self._connection is None:
                # Autocommit: the locks belong to the session, and no transaction stays open.
                self._connection = self._engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT"
                )
            slot = try_slot(self._connection, self._key, self.cap)
            if slot is not None:
                self.held.append(slot)  # here, so that a cancelled caller loses none
            return slot

    def _close(self) -> None:
        with self._session:
            connection, self._connection = self._connection, None
            held, self.held = self.held, []
        if connection is None:
            return
        try:
            free_slots(connection, self._key, held)
        except Exception:
            # The session is in doubt: end it, which frees its locks, instead of pooling it.
            connection.invalidate()
            raise
        finally:
            connection.close()
