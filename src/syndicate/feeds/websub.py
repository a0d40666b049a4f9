"""Telling a WebSub hub which feeds changed, so that subscribers hear of new items in seconds.

Every feed advertises the hub (`<atom:link rel="hub">`, JSON Feed `hubs`); after a build the
service posts `hub.mode=publish` and `hub.url=<feed URL>` for each feed file the build wrote,
and the hub fetches the feed and pushes it on.

One feed URL per request, over one kept-alive connection. The W3C Recommendation leaves the
publish request to each hub: Google's and Superfeedr accept several `hub.url` values in one
request, but many small hubs read only the first and would drop the rest without a word. A
silently lost announcement is worse than more requests; `batch_size` is there for a hub known
to take many. After a few failed requests in a row the hub is taken to be down and the rest
are counted as failed without trying, so a dead hub costs a build seconds, not minutes.

Announcing is best effort: a failure is logged and counted, never raised; the feeds are
already published and pollers will find them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from syndicate import __version__
from syndicate.observe import metrics
from syndicate.observe.logs import logfmt

if TYPE_CHECKING:
    from syndicate.feeds.builder import BuildReport
    from syndicate.feeds.config import FeedConfig

log = logging.getLogger(__name__)

# A hub that failed this many requests in a row is not asked about the remaining feeds.
GIVE_UP_AFTER = 3
USER_AGENT = f"Syndicate/{__version__} (WebSub publisher)"


@dataclass
class WebSubReport:
    """What announcing to the hub did: the feed URLs it accepted and those it did not."""

    notified: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether the hub accepted every announcement."""
        return not self.failed

    def summary(self) -> str:
        """One line for people."""
        failed = f", {len(self.failed)} failed" if self.failed else ""
        return (
            f"{len(self.notified)} feeds announced to the WebSub hub{failed} "
            f"in {self.requests} requests"
        )


def notify_hub(
    hub: str, feed_urls: Sequence[str], *, timeout: float = 10, batch_size: int = 1
) -> WebSubReport:
    """Post `hub.mode=publish` for each feed URL to `hub`; failures are logged, never raised."""
    report = WebSubReport()
    urls = list(dict.fromkeys(feed_urls))  # each once, in the order given
    if not urls:
        return report
    started = time.perf_counter()
    batches = [urls[start : start + batch_size] for start in range(0, len(urls), batch_size)]
    failures_in_a_row = 0
    try:
        with httpx.Client(timeout=timeout, headers={"user-agent": USER_AGENT}) as client:
            for number, batch in enumerate(batches):
                if failures_in_a_row >= GIVE_UP_AFTER:
                    skipped = [url for rest in batches[number:] for url in rest]
                    log.warning(
                        "websub gave up hub=%s failures_in_a_row=%d skipped=%d",
                        _safe(hub),
                        failures_in_a_row,
                        len(skipped),
                    )
                    report.failed.extend(skipped)
                    break
                report.requests += 1
                if _publish(client, hub, batch):
                    report.notified.extend(batch)
                    failures_in_a_row = 0
                else:
                    report.failed.extend(batch)
                    failures_in_a_row += 1
    except Exception as error:  # a malformed hub URL, say: it must not fail the build
        log.warning("websub failed hub=%s error=%s", _safe(hub), _quoted(error))
        done = set(report.notified) | set(report.failed)
        report.failed.extend(url for url in urls if url not in done)
    report.seconds = time.perf_counter() - started
    metrics.websub_notifications.labels("ok").inc(len(report.notified))
    metrics.websub_notifications.labels("failed").inc(len(report.failed))
    log.info(
        "websub notified hub=%s feeds=%d ok=%d failed=%d requests=%d seconds=%.3f",
        _safe(hub),
        len(urls),
        len(report.notified),
        len(report.failed),
        report.requests,
        report.seconds,
    )
    return report


def announce_build(
    config: FeedConfig, report: BuildReport, *, timeout: float = 10
) -> WebSubReport | None:
    """Announce the feed files a build wrote to the configured hub; None when there is no hub."""
    if not config.hub:
        return None
    return notify_hub(config.hub, report.changed_urls(config.feeds_url), timeout=timeout)


def _publish(client: httpx.Client, hub: str, urls: Sequence[str]) -> bool:
    """One publish request; True when the hub accepted it (any 2xx)."""
    # A list value becomes one `hub.url=` field per URL.
    form = {"hub.mode": "publish", "hub.url": list(urls)}
    try:
        response = client.post(hub, data=form)
    except httpx.HTTPError as error:
        log.warning(
            "websub publish failed hub=%s feeds=%d error=%s first=%s",
            _safe(hub),
            len(urls),
            _quoted(error),
            urls[0],
        )
        return False
    if not response.is_success:
        log.warning(
            "websub publish refused hub=%s feeds=%d status=%d first=%s",
            _safe(hub),
            len(urls),
            response.status_code,
            urls[0],
        )
        return False
    return True


def _safe(url: str) -> str:
    """The hub URL without credentials or query, which may hold a secret, for the log."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return logfmt("unreadable URL")
    return f"{parts.scheme}://{parts.hostname}{port}{parts.path}"


def _quoted(error: BaseException) -> str:
    """An error as one logfmt value: its class and message."""
    return logfmt(f"{type(error).__name__}: {error}")
