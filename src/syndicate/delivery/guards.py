"""What a running send keeps checking: suppressions made since it read its page, and a pause.

Recipients are read a page at a time, so an address suppressed while the send runs (a bounce
or a complaint recorded by a webhook or a mailbox poll, an unsubscribe) may still be in the
page. `SuppressionRecheck` looks again at the addresses read but not yet composed, at most
every `every` seconds, so no message is composed for an address suppressed more than `every`
seconds before (one query for a few hundred addresses by primary key, not one a message).

`PauseWatch` asks the plan, every `every` messages or `seconds`, whether the send must stop
(the edition's hard-bounce rate, see send.pause), and once told stops it as SIGTERM does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from syndicate.observe.logs import logfmt
from syndicate.store.database import reading

log = logging.getLogger(__name__)

# (connection, addresses) -> the suppressed ones among them, with why: {email: reason}
SuppressedAmong = Callable[[Connection, Collection[str]], Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class Pause:
    """Why a send stopped itself: its edition's hard-bounce rate passed the limit."""

    hard_bounce_rate: float
    sample: int  # messages of the edition sent so far, in every run
    limit: float  # [bounces] pause_rate

    def reason(self) -> str:
        """For people: the rate, the sample and the limit it passed."""
        return (
            f"hard-bounce rate {self.hard_bounce_rate:.2%} of {self.sample} sent is over "
            f"[bounces] pause_rate {self.limit:.2%}"
        )

    def fields(self) -> str:
        """For the log: `hard_bounce_rate=0.0612 sample=245 pause_rate=0.05`."""
        return (
            f"hard_bounce_rate={self.hard_bounce_rate:.4f} sample={self.sample} "
            f"pause_rate={self.limit:g}"
        )


# connection -> why the send must stop now, or None to go on
PauseCheck = Callable[[Connection], Pause | None]


class Addressed(Protocol):
    """A recipient, as far as these checks care."""

    @property
    def email(self) -> str:
        """The address the message would go to."""


class SuppressionRecheck:
    """Suppressions made since a page was read, checked before each message is composed."""

    def __init__(self, engine: Engine, among: SuppressedAmong | None, every: float) -> None:
        """Look up addresses through `among` on `engine`, at most every `every` seconds.

        Without `among` nothing is looked up again: every recipient read goes on.
        """
        self.engine = engine
        self.among = among
        self.every = every
        self.waiting: set[str] = set()  # read from a page, not yet composed
        self.suppressed: dict[str, str] = {}
        self.checked = time.monotonic()  # the page was read just now
        self.lock = asyncio.Lock()

    def expect(self, recipients: Iterable[Addressed]) -> None:
        """Note a page's recipients, read from the database just now."""
        if self.among is not None:
            self.waiting.update(recipient.email for recipient in recipients)

    async def reason(self, recipient: Addressed) -> str | None:
        """Why `recipient` may no longer be mailed (its suppression), or None to go on."""
        if self.among is None:
            return None
        if self._stale():
            async with self.lock:
                if self._stale():  # another worker may have looked while this one waited
                    started = time.monotonic()
                    found = await asyncio.to_thread(self._look, list(self.waiting))
                    self.suppressed.update(found)
                    self.checked = started
        self.waiting.discard(recipient.email)
        return self.suppressed.get(recipient.email)

    def _stale(self) -> bool:
        return time.monotonic() - self.checked >= self.every

    def _look(self, emails: list[str]) -> Mapping[str, str]:
        if not emails or self.among is None:
            return {}
        with reading(self.engine).connect() as connection:
            return self.among(connection, emails)


class PauseWatch:
    """Asks, every so many messages or seconds, whether the send must stop, and why."""

    def __init__(
        self, engine: Engine, check: PauseCheck | None, every: int, seconds: float
    ) -> None:
        """Run `check` on `engine` after every `every` messages, or `seconds` without.

        Without `check` the send is never paused.
        """
        self.engine = engine
        self.check = check
        self.every = max(1, every)
        self.seconds = seconds
        self.counted = 0
        self.asked = False  # whether the first check was made
        self.due = asyncio.Event()

    async def stops_first(self, stop: Callable[[Pause], None]) -> bool:
        """Once, before the first message: True (and `stop` called) if the rate is over already.

        A resumed send whose edition is still over the limit so stops again at once, saying
        why; one with nobody left to send to never asks.
        """
        if self.asked:
            return False
        self.asked = True
        found = await asyncio.to_thread(self._ask)
        if found is not None:
            stop(found)
        return found is not None

    def count(self) -> None:
        """One more message has been dealt with."""
        self.counted += 1
        if self.counted % self.every == 0:
            self.due.set()

    async def watch(self, stop: Callable[[Pause], None]) -> None:
        """Check whenever due, until cancelled; call `stop` with the reason when told to stop."""
        while self.check is not None:
            with contextlib.suppress(TimeoutError):  # a while without messages: look anyway
                await asyncio.wait_for(self.due.wait(), timeout=self.seconds)
            self.due.clear()
            try:
                reason = await asyncio.to_thread(self._ask)
            except SQLAlchemyError as error:  # the ledger's own writes will say if it lasts
                log.warning("bounce rate unreadable error=%s", logfmt(str(error)))
                continue
            if reason is not None:
                stop(reason)
                return

    def _ask(self) -> Pause | None:
        if self.check is None:
            return None
        with reading(self.engine).connect() as connection:
            return self.check(connection)
