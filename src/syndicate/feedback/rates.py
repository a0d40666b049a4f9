"""Deliverability rates for operators: per edition and per day, the bounced and complained share.

The counts come from the store's tallies (store.tallies): messages the ledger handed over,
and the addresses that bounced hard or soft or complained among them. A rate is a share of
the messages sent; the limits people watch are Gmail's and Yahoo's 0.3 % of complaints and
the few percent of bounces at which mail providers suspend a sender.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from syndicate.store.database import reading
from syndicate.store.tallies import SentEdition, Tally, day_tallies, edition_tallies, sent_editions


@dataclass(frozen=True, slots=True)
class Rates:
    """What happened to the mail of one edition or one day: counts and their shares of sent."""

    label: str  # an edition's id, or a day (YYYY-MM-DD, UTC)
    tally: Tally

    @property
    def sent(self) -> int:
        """Messages handed over (sent, or refused during the SMTP session)."""
        return self.tally.sent

    @property
    def hard(self) -> int:
        """Addresses that bounced hard: refused at once or reported later."""
        return self.tally.hard_bounced

    @property
    def soft(self) -> int:
        """Addresses reported to have bounced soft."""
        return self.tally.soft

    @property
    def complained(self) -> int:
        """Addresses whose reader reported the message as spam."""
        return self.tally.complained

    def rate(self, count: int) -> float:
        """`count` as a share of the messages sent (0 when nothing was sent)."""
        return count / self.sent if self.sent else 0.0

    def cells(self) -> list[str]:
        """The row of a rates table: label, sent, then each count with its rate."""
        return [
            self.label,
            str(self.sent),
            *(
                f"{count} ({percent(self.rate(count))})"
                for count in (self.hard, self.soft, self.complained)
            ),
        ]


HEADINGS = ["sent", "hard bounces", "soft bounces", "complaints"]


def rate_table(heading: str, rows: list[Rates], indent: str = "  ") -> list[str]:
    """Rates as aligned lines under a heading row (edition, day); `edition: none` when empty."""
    if not rows:
        return [f"{indent}{heading}: none"]
    table = [[heading, *HEADINGS], *(row.cells() for row in rows)]
    widths = [max(len(line[column]) for line in table) for column in range(len(table[0]))]
    return [
        indent
        + "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        ).rstrip()
        for line in table
    ]


def percent(share: float) -> str:
    """A share as people read rates: `0.25 %`."""
    return f"{share * 100:.2f} %"


def recent_editions(engine: Engine, limit: int = 6) -> list[Rates]:
    """The rates of the `limit` newest editions the ledger has sent, newest first."""
    with reading(engine).connect() as connection:
        editions = sent_editions(connection, limit)
        tallies = edition_tallies(connection, [sent.id for sent in editions])
    return [Rates(sent.id, tallies[sent.id]) for sent in editions]


def recent_days(engine: Engine, days: int = 7, now: datetime | None = None) -> list[Rates]:
    """The rates of the last `days` UTC days (today included) with any mail, newest first."""
    now = now or datetime.now(UTC)
    first = (now.astimezone(UTC) - timedelta(days=days - 1)).date()
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    with reading(engine).connect() as connection:
        tallies = day_tallies(connection, since)
    return [Rates(day, tallies[day]) for day in sorted(tallies, reverse=True)]


def latest_editions(engine: Engine) -> dict[tuple[str, str], tuple[SentEdition, Rates]]:
    """The newest sent edition of each kind and language, with its rates."""
    with reading(engine).connect() as connection:
        latest: dict[tuple[str, str], SentEdition] = {}
        for sent in sent_editions(connection):  # newest first: the first of each is kept
            latest.setdefault((sent.kind, sent.language), sent)
        tallies = edition_tallies(connection, [sent.id for sent in latest.values()])
    return {key: (sent, Rates(sent.id, tallies[sent.id])) for key, sent in latest.items()}
