"""When the digests go out: the `[schedule] daily_at / weekly_at / monthly_at` settings.

Each is parsed into the fields of a cron rule in the configured zone, so APScheduler's
CronTrigger does the calendar arithmetic, daylight-saving changes included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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
