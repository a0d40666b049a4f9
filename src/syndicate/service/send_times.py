"""When the digests go out: the `[schedule] daily_at / weekly_at / monthly_at` settings as cron rules.

Each setting is parsed (by `syndicate.domain.periods`) into the fields of a cron rule in the configured
zone, so APScheduler's CronTrigger does the calendar arithmetic, daylight-saving changes included.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

from syndicate.domain.periods import DIGEST_KINDS, SendTime


def digest_trigger(kind: str, send_at: SendTime, zone: ZoneInfo) -> CronTrigger:
    """The cron rule that fires digest `kind` at `send_at`, local time in `zone`."""
    return CronTrigger(timezone=zone, **send_at.cron_fields())


def previous_fire(kind: str, trigger: CronTrigger, now: datetime) -> datetime | None:
    """The latest moment at or before `now` the trigger fired (None if none in a period)."""
    moment = trigger.get_next_fire_time(None, now - DIGEST_KINDS[kind].lookback)
    latest = None
    while moment is not None and moment <= now:
        latest = moment
        moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
    return latest
