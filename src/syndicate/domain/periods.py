"""The periods Syndicate counts in: each digest kind and each Most Viewed window, one row each.

Everything that differs between the daily, weekly and monthly digests (their names, how far an
edition reaches back, subject, intro and footer, when they go out by default and how that
setting is written) is a row of `DIGEST_KINDS`; every Most Viewed period is a row of
`MOST_VIEWED_PERIODS`. A leaf: it imports nothing of ours but the translation marker, so the
settings, the feeds, the digests and the schedule all read the same rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from syndicate.i18n.catalogs import N_

Kind = Literal["daily", "weekly", "monthly"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME = r"(?P<hour>[01]?\d|2[0-3]):(?P<minute>[0-5]\d)(?::(?P<second>[0-5]\d))?"


@dataclass(frozen=True, slots=True)
class DigestKind:
    """One digest newsletter: what readers call it, what it covers, when it goes out."""

    name: Kind
    title: str  # as readers see it (translated where shown): titles, forms, list names
    reach: timedelta  # how far back an edition's window reaches from its end
    subject: str  # an edition's subject: {site} and {date}
    intro: str  # the line under an edition's heading
    reason: str  # the footer's "why you get this": {site}
    web_note: str  # the web copy's note in place of the reason: {site}
    send_at: str  # the default of `[schedule] <name>_at`, also the example of its form
    send_at_help: str  # that setting's description
    send_at_form: re.Pattern[str]  # how that setting is written
    # How far back the previous send time can lie: a little over one period.
    lookback: timedelta


_DIGEST_ROWS = (
    DigestKind(
        name="daily",
        title=N_("Daily digest"),
        reach=timedelta(hours=24),
        subject=N_("{site}: your daily digest for {date}"),
        intro=N_(
            "The stories our editors picked and the ones readers read most in the last 24 hours."
        ),
        reason=N_(
            "You are receiving this email because you subscribed to the daily digest of {site}."
        ),
        web_note=N_("This is the web copy of the daily digest of {site}."),
        send_at="07:00",
        send_at_help="Local time the daily digest is built and sent: HH:MM[:SS].",
        send_at_form=re.compile(rf"{_TIME}"),
        lookback=timedelta(days=2),
    ),
    DigestKind(
        name="weekly",
        title=N_("Weekly digest"),
        reach=timedelta(days=7),
        subject=N_("{site}: your weekly digest for {date}"),
        intro=N_(
            "The stories our editors picked and the ones readers read most in the last 7 days."
        ),
        reason=N_(
            "You are receiving this email because you subscribed to the weekly digest of {site}."
        ),
        web_note=N_("This is the web copy of the weekly digest of {site}."),
        send_at="mon 07:00",
        send_at_help="Weekday and local time of the weekly digest: 'mon 07:00'.",
        send_at_form=re.compile(rf"(?P<weekday>{'|'.join(WEEKDAYS)})\s+{_TIME}", re.IGNORECASE),
        lookback=timedelta(days=8),
    ),
    DigestKind(
        name="monthly",
        title=N_("Monthly digest"),
        reach=timedelta(days=30),
        subject=N_("{site}: your monthly digest for {date}"),
        intro=N_(
            "The stories our editors picked and the ones readers read most in the last 30 days."
        ),
        reason=N_(
            "You are receiving this email because you subscribed to the monthly digest of {site}."
        ),
        web_note=N_("This is the web copy of the monthly digest of {site}."),
        send_at="1 07:00",
        send_at_help="Day of the month (1-28 or 'last') and local time: '1 07:00'.",
        send_at_form=re.compile(rf"(?P<day>[1-9]|1\d|2[0-8]|last)\s+{_TIME}", re.IGNORECASE),
        lookback=timedelta(days=32),
    ),
)
# Every digest kind by name, in the order forms and settings list them.
DIGEST_KINDS: dict[str, DigestKind] = {kind.name: kind for kind in _DIGEST_ROWS}
KINDS: tuple[Kind, ...] = tuple(kind.name for kind in _DIGEST_ROWS)


@dataclass(frozen=True, slots=True)
class MostViewedPeriod:
    """One Most Viewed window: its feed's key part, how far back it counts, what readers see."""

    name: str  # the last part of the feed's key: `en/most-viewed/day`
    reach: timedelta
    title: str
    description: str  # {site}


# In time order, the order the index lists them.
MOST_VIEWED_PERIODS: dict[str, MostViewedPeriod] = {
    period.name: period
    for period in (
        MostViewedPeriod(
            "day",
            timedelta(hours=24),
            N_("Most viewed today"),
            N_("The most read articles from {site} in the last 24 hours."),
        ),
        MostViewedPeriod(
            "week",
            timedelta(days=7),
            N_("Most viewed this week"),
            N_("The most read articles from {site} in the last 7 days."),
        ),
        MostViewedPeriod(
            "month",
            timedelta(days=30),
            N_("Most viewed this month"),
            N_("The most read articles from {site} in the last 30 days."),
        ),
    )
}
PERIODS: tuple[str, ...] = tuple(MOST_VIEWED_PERIODS)
# The longest Most Viewed window: views older than this no longer count for any of them.
LONGEST_PERIOD = max(period.reach for period in MOST_VIEWED_PERIODS.values())


@dataclass(frozen=True, slots=True)
class SendTime:
    """A digest's moment as cron fields: which day (for weekly and monthly) and what time."""

    hour: int
    minute: int
    second: int = 0
    day_of_week: str | None = None  # "mon".."sun", weekly only
    day: str | None = None  # "1".."28" or "last", monthly only

    def cron_fields(self) -> dict[str, str | int]:
        """Keyword arguments for a cron rule (without the zone)."""
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
    row = DIGEST_KINDS[kind]
    match = row.send_at_form.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not a {kind} time like {row.send_at!r}")
    parts = match.groupdict()
    return SendTime(
        hour=int(parts["hour"]),
        minute=int(parts["minute"]),
        second=int(parts["second"] or 0),
        day_of_week=parts["weekday"].lower() if parts.get("weekday") else None,
        day=parts["day"].lower() if parts.get("day") else None,
    )
