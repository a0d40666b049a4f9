"""When the digests go out: the `[schedule] daily_at / weekly_at / monthly_at` settings.

Each is parsed into the fields of a cron rule in the configured zone, so APScheduler's
CronTrigger does the calendar arithmetic, daylight-saving changes included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = r"(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)(?::(?P<second>[0-5]\d))?"
_PATTERNS = {
    "daily": re.compile(rf"{_TIME}"),
    "weekly": re.compile(rf"(?P<weekday>{'|'.join(WEEKDAYS)})\s+{_TIME}", re.IGNORECASE),
    "monthly": re.compile(rf"(?P<day>[1-9]|1\d|2[0-8]|last)\s+{_TIME}", re.IGNORECASE),
}
EXAMPLES = {"daily": "07:00", "weekly": "mon 07:00", "monthly": "1 07:00"}


@dataclass(frozen=True, slots=True)
class SendTime:
    """A digest's moment as cron fields: which day (for weekly and monthly) and what time."""

    hour: int
    minute: int
    second: int = 0
    day_of_week: str | None = None  # "mon".."sun", weekly only
    day: str | None = None  # "1".."28" or "last", monthly only

    def cron_fields(self) -> dict[str, str | int]:
        """Keyword arguments for apscheduler's CronTrigger (without the zone)."""
        fields: dict[str, str | int] = {
            "hour": self.hour,
            "minute": self.minute,
            "second": self.second,
        }
        if self.day_of_week is not None:
            fields["day_of_week"] = self.day_of_week
        if self.day is not None:
            fields["day"] = self.day
        return fields


def parse_send_time(kind: str, text: str) -> SendTime:
    """Parse a digest's send time, or raise ValueError showing the expected form."""
    match = _PATTERNS[kind].fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a {kind} time like {EXAMPLES[kind]!r}")
    parts = match.groupdict()
    return SendTime(
        hour=int(parts["hour"]),
        minute=int(parts["minute"]),
        second=int(parts["second"] or 0),
        day_of_week=parts["weekday"].lower() if parts.get("weekday") else None,
        day=parts["day"].lower() if parts.get("day") else None,
    )


# How far back the previous moment of each digest can lie: a little over one period.
LOOKBACK = {"daily": timedelta(days=2), "weekly": timedelta(days=8), "monthly": timedelta(days=32)}


def digest_trigger(kind: str, send_at: SendTime, zone: ZoneInfo) -> CronTrigger:
    """The cron rule that fires digest `kind` at `send_at`, local time in `zone`."""
    return CronTrigger(timezone=zone, **send_at.cron_fields())


def previous_fire(kind: str, trigger: CronTrigger, now: datetime) -> datetime | None:
    """The latest moment at or before `now` the trigger fired (None if none in a period)."""
    moment = trigger.get_next_fire_time(None, now - LOOKBACK[kind])
    latest = None
    while moment is not None and moment <= now:
        latest = moment
        moment = trigger.get_next_fire_time(moment, moment + timedelta(seconds=1))
    return latest
