"""The bounce commands: `syndicate bounces read [FILE ... | -]`.

Composition only, as in cli.commands: reports in from files or standard input, each taken
in by feedback.intake (parsed, recorded once, suppressing by the [bounces] rules), one line
per message on standard output, progress and the summary on standard error, and an exit
status that tells the truth: 0 every message read, 1 one could not be (named; the rest go
on), 2 an input that is no mailbox (nothing read then), and 75 (EX_TEMPFAIL) when the one
message on standard input could not be stored: a mail server delivering to this command as a
pipe keeps the report and tries again later, so nothing is lost while the store is down.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click

from syndicate.cli.context import Context, Group, fail, pass_context
from syndicate.observe.progress import ProgressBar

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from syndicate.feedback.intake import TakenReport
    from syndicate.feedback.record import FeedbackRules

STDIN = "-"
TRY_AGAIN = 75  # EX_TEMPFAIL (sysexits.h): what Postfix and Exim retry a pipe delivery on


@click.group(cls=Group)
def bounces() -> None:
    """Read bounces, complaints and auto-replies that came back as mail."""


@bounces.command("read")
@click.argument("sources", nargs=-1, metavar="[FILE ... | -]")
@click.option(
    "--recipient",
    default="",
    metavar="ADDRESS",
    help="The envelope recipient the report was delivered to (a pipe transport's ${recipient}).",
)
@pass_context
def read_bounces(context: Context, sources: tuple[str, ...], recipient: str) -> None:
    """Read reports (a message, an mbox, a Maildir, or one message on standard input) and record them."""
    # Deferred: the store and the report readers load only for this command.
    from syndicate.feedback.intake import feedback_rules
    from syndicate.feedback.report_files import (
        NotAMailbox,
        ReportFile,
        open_report_file,
        read_messages,
    )

    names = sources or (STDIN,)
    if names.count(STDIN) > 1:
        fail("standard input (-) can be read once")
    inputs: list[ReportFile | None] = []  # None: standard input
    for name in names:
        try:
            inputs.append(None if name == STDIN else open_report_file(Path(name)))
        except NotAMailbox as error:
            fail(f"cannot read {error}")
    engine = context.engine
    rules = feedback_rules(engine, context.settings)
    tally = Tally(prefixed=len(inputs) > 1 or any(one is not None and one.many for one in inputs))
    with ProgressBar() as bar:
        for source in inputs:
            if source is None:
                raw = sys.stdin.buffer.read()
                tally.take(engine, rules, STDIN, raw, recipient)
                continue
            count, messages = read_messages(source)
            bar.phase(f"Reading {source.path}", count)
            for reference, raw in messages:
                tally.take(engine, rules, reference, raw, recipient)
                bar.advance()
    click.echo(tally.summary(), err=True)
    if tally.store_failed and names == (STDIN,):
        sys.exit(TRY_AGAIN)
    sys.exit(1 if tally.failed else 0)


class Tally:
    """Takes in messages one by one, says what each did, and counts the outcomes."""

    def __init__(self, *, prefixed: bool) -> None:
        """Count from nothing; `prefixed` puts each message's reference before its lines."""
        self.prefixed = prefixed
        self.outcomes: Counter[str] = Counter()
        self.messages = 0
        self.failed = 0
        self.store_failed = 0  # of those failed, the ones the store could not take

    def take(
        self,
        engine: Engine,
        rules: FeedbackRules,
        reference: str,
        raw: bytes | OSError,
        recipient: str,
    ) -> None:
        """Take in one message (or name the one that could not be read) and print its lines."""
        from sqlalchemy.exc import SQLAlchemyError

        from syndicate.feedback.intake import take_report
        from syndicate.feedback.reports import UNREADABLE

        self.messages += 1
        if isinstance(raw, OSError):
            self._failed(reference, raw.strerror or str(raw))
            return
        try:
            taken = take_report(
                engine, raw, rules, reference=reference, envelope_recipient=recipient
            )
        except SQLAlchemyError as error:  # this message's record failed; the rest may not
            self.store_failed += 1
            self._failed(reference, f"the store failed: {str(error).splitlines()[0]}")
            return
        if taken.ignored.startswith(UNREADABLE):
            self._failed(reference, taken.ignored)
            return
        self._count(taken)
        prefix = f"{reference}: " if self.prefixed else ""
        for line in taken.lines():
            click.echo(prefix + line)

    def _failed(self, reference: str, reason: str) -> None:
        self.failed += 1
        click.echo(f"syndicate: {reference}: could not be read: {reason}", err=True)

    def _count(self, taken: TakenReport) -> None:
        if taken.ignored:
            self.outcomes["ignored"] += 1
            return
        for recorded in taken.recorded:
            if not recorded.new:
                self.outcomes["already recorded"] += 1
                continue
            self.outcomes[str(recorded.feedback.kind)] += 1
            self.outcomes["suppressed"] += recorded.suppressed

    def summary(self) -> str:
        """One line: messages read, what they said, and how many could not be read."""
        said = ", ".join(
            _counted(self.outcomes[key], *names) for key, names in _OUTCOMES if self.outcomes[key]
        )
        line = f"{_counted(self.messages - self.failed, 'message read', 'messages read')}"
        line += f": {said}" if said else ""
        return line + (f"; {self.failed:,} could not be read" if self.failed else "")


_OUTCOMES = (
    ("hard", ("hard bounce", "hard bounces")),
    ("soft", ("soft bounce", "soft bounces")),
    ("complaint", ("complaint", "complaints")),
    ("delivered", ("delivery", "deliveries")),
    ("ignored", ("ignored", "ignored")),
    ("already recorded", ("already recorded", "already recorded")),
    ("suppressed", ("address suppressed", "addresses suppressed")),
)


def _counted(count: int, one: str, many: str) -> str:
    return f"{count:,} {one if count == 1 else many}"
