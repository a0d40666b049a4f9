"""A send that stops itself: an edition's hard-bounce rate over `[bounces] pause_rate`.

Mail providers suspend a sender at a few percent of bounces, so a list gone stale (an old
import, a typo'd domain) should not be mailed to the end. Once an edition has been sent to
`[bounces] pause_sample` addresses (in every run and process of its send), a hard-bounce rate
over `pause_rate` stops it as SIGTERM does; `syndicate digest send ID` resumes it, and stops
again at once while the rate is still over, saying why: raise `pause_rate` (or suppress the
bad addresses) to go on.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection

from syndicate.delivery.guards import Pause
from syndicate.settings.bounces import BounceSettings
from syndicate.store.tallies import edition_tallies

CHECK_EVERY = 50  # messages between looks at the rate (fewer for a small sample)


def bounce_pause(bounces: BounceSettings, edition_id: str) -> Callable[[Connection], Pause | None]:
    """The check a send of `edition_id` runs now and then: a Pause once the rate is over."""

    def check(connection: Connection) -> Pause | None:
        tally = edition_tallies(connection, [edition_id])[edition_id]
        if tally.sent < bounces.pause_sample:
            return None
        rate = tally.hard_bounced / tally.sent
        return Pause(rate, tally.sent, bounces.pause_rate) if rate > bounces.pause_rate else None

    return check


def check_every(bounces: BounceSettings) -> int:
    """Messages between looks: often enough that a small sample is judged near its size."""
    return max(1, min(CHECK_EVERY, bounces.pause_sample // 4))
