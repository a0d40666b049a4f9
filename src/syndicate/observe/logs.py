"""Structured log lines on standard error: `ts=… level=… logger=… msg="…" key=value …`.

Messages are written as `event key=%s key=%s`, so every line is greppable by event and field.
"""

from __future__ import annotations

import logging
import sys
import time


class LogfmtFormatter(logging.Formatter):
    """One logfmt line per record, exceptions folded onto the same line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as `ts=… level=… logger=… msg`."""
        moment = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line = (
            f"ts={moment}.{int(record.msecs):03d}Z level={record.levelname.lower()} "
            f"logger={record.name} {record.getMessage()}"
        )
        if record.exc_info:
            error = self.formatException(record.exc_info).replace("\n", " | ")
            line += f" error={logfmt(error)}"
        return line


def logfmt(value: object) -> str:
    """`value` as one logfmt value: bare when it can be, else double-quoted and escaped."""
    text = " ".join(str(value).split())
    if text and not any(char in text for char in ' ="\\'):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def setup_logging(level: str = "info") -> None:
    """Send log lines to standard error at `level` (debug, info, warning, error)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party chatter that says nothing an operator needs at info level (procrastinate's
    # lines are prose; the queue's worker logs the same events as `event key=value`).
    for noisy in ("alembic", "apscheduler", "httpx", "procrastinate"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
