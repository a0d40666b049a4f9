"""`syndicate run` end to end: a real process, a real port, the inbox, the schedule, SIGTERM.

Each test starts the service as an operator would, with settings in the environment, a
one-second poll, and a digest time a few seconds ahead.
"""

from __future__ import annotations

import mailbox
import signal
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import pytest

from tests.servicerun import Service, Site, article_record, soon, wait_for
from tests.smtpserver import Serve

FEED = "/feeds/en/all.atom"


def titles(service: Service, path: str = FEED) -> list[str]:
    """The entry titles of a served feed, read by feedparser as a feed reader would."""
    parsed = feedparser.parse(service.get(path).content)
    return [entry.title for entry in parsed.entries]


def test_inbox_articles_reach_the_served_feeds(
    tmp_path: Path, demo_corpus: Path, services: list[Service]
) -> None:
    """A file dropped in the inbox is served within seconds; readers get 304s; SIGTERM exits 0."""
    site = Site(tmp_path, demo_corpus)
    service = site.start()
    services.append(service)
    reader = feedparser.parse(service.base + FEED)
    assert reader.status == 200
    assert reader.entries
    assert feedparser.parse(service.base + FEED, etag=reader.etag).status == 304
    assert feedparser.parse(service.base + FEED, modified=reader.modified).status == 304

    now = datetime.now(UTC)
    lines = article_record("inbox-1", "Dropped into the inbox", now - timedelta(minutes=1))
    lines += article_record("inbox-2", "Scheduled a few seconds ahead", now + timedelta(seconds=4))
    lines += '{"type": "article", "id": "broken"}\n'
    staging = site.inbox / ".drop.jsonl"  # written under a hidden name, then moved in whole
    staging.write_text(lines)
    staging.rename(site.inbox / "drop.jsonl")

    wait_for(lambda: "Dropped into the inbox" in titles(service), 20, "the inbox article")
    assert "Scheduled a few seconds ahead" not in titles(service)
    wait_for(lambda: "Scheduled a few seconds ahead" in titles(service), 20, "its moment")
    assert feedparser.parse(service.base + FEED, etag=reader.etag).status == 200
    assert "Dropped into the inbox" in titles(service, "/feeds/en/tags/inbox-test.rss")

    rejected = list((site.inbox / "rejected").iterdir())
    assert any(path.name.startswith("drop") for path in rejected), rejected
    report = next(path for path in rejected if "report" in path.name).read_text()
    assert "line 3" in report
    metrics = service.get("/metrics").text
    assert 'syndicate_ingest_records_total{outcome="accepted",source="inbox"} 2.0' in metrics
    assert 'syndicate_ingest_records_total{outcome="rejected",source="inbox"} 1.0' in metrics

    status = site.cli("status").stdout
    assert "Scheduler: running as" in status
    assert "poll  (every 1 s)" in status
    assert service.terminate(timeout=20) == 0
    assert "service stopped" in service.log
    assert "Scheduler: not running" in site.cli("status").stdout


def test_the_daily_digest_goes_out_at_its_local_time(
    tmp_path: Path, demo_corpus: Path, services: list[Service]
) -> None:
    """With daily_at a few seconds ahead in Tehran, the edition is built and mailed then."""
    site = Site(tmp_path, demo_corpus)
    site.subscribe([f"reader{n}@example.org" for n in range(12)])
    zone = "Asia/Tehran"
    at = soon(zone, 6)
    service = site.start(schedule__timezone=zone, schedule__daily_at=at)
    services.append(service)
    assert not list(mailbox.Maildir(site.outbox, create=True).keys())  # not before its time
    wait_for(lambda: len(mailbox.Maildir(site.outbox).keys()) == 12, 60, "12 messages")
    local_day = datetime.now(UTC).astimezone(ZoneInfo(zone)).date()
    edition = f"daily-en-{local_day.isoformat()}"
    service.wait_logged("digest finished kind=daily")
    assert f"{edition}: 12 sent, 0 failed" in service.log
    status = site.cli("status").stdout
    assert f"digest-daily  ({at})" in status
    assert f"{edition}  12 sent, 0 bounced, 0 deferred, 0 failed" in status
    assert service.terminate() == 0


@pytest.mark.parametrize("processes", ["1", "2"])
def test_sigterm_mid_send_then_restart_reaches_everyone_once(
    tmp_path: Path, demo_corpus: Path, services: list[Service], serve: Serve, processes: str
) -> None:
    """SIGTERM during a send exits 0 with the ledger whole; the restart sends the rest, once each.

    With two processes, the sending child hears of the stop from the service and stops too.
    """
    smtp, smtp_settings = serve()
    smtp.delay = 0.03  # each message takes a moment, so the send is still going when stopped
    people = [f"reader{n:03d}@example.org" for n in range(200)]
    site = Site(tmp_path, demo_corpus)
    site.subscribe(people)
    mail = {
        "mail__transport": "smtp",
        "mail__smtp__host": "127.0.0.1",
        "mail__smtp__port": str(smtp_settings.port),
        "mail__smtp__pool_size": "2",
        "mail__processes": processes,
    }
    service = site.start(schedule__daily_at=soon("UTC", 4), **mail)
    services.append(service)
    wait_for(lambda: len(smtp.received) >= 20, 60, "the send to be under way")
    assert service.terminate(timeout=20) == 0
    stopped_at = len(smtp.received)
    assert stopped_at < len(people), "the send finished before SIGTERM; nothing was tested"
    assert "result=stopped" in service.log

    again = site.start()
    services.append(again)
    again.wait_logged("digest catch-up kind=daily")
    wait_for(lambda: len(smtp.received) >= len(people), 120, "everyone to be reached")
    again.wait_logged("digest finished kind=daily")
    counts = Counter(smtp.addresses())
    assert set(counts) == set(people), "somebody was skipped"
    assert max(counts.values()) == 1, "a stopped send must not repeat anyone"
    assert again.terminate() == 0


def test_a_second_service_on_the_same_database_stands_by(
    tmp_path: Path, demo_corpus: Path, services: list[Service]
) -> None:
    """Two `syndicate run`s share a database: one sends, the other stands by; nobody gets two."""
    site = Site(tmp_path, demo_corpus)
    site.subscribe([f"reader{n}@example.org" for n in range(30)])
    at = soon("UTC", 8)
    first = site.start(schedule__daily_at=at)
    second = site.start(schedule__daily_at=at)
    services += [first, second]
    second.wait_logged("scheduler standby")
    wait_for(lambda: len(mailbox.Maildir(site.outbox).keys()) >= 30, 60, "30 messages")
    first.wait_logged("digest finished kind=daily")
    box = mailbox.Maildir(site.outbox)
    assert Counter(message["To"] for message in box) == Counter(
        {f"Reader <reader{n}@example.org>": 1 for n in range(30)}
    )
    assert "digest finished" not in second.log
    # When the leader goes, the standby takes over the schedule.
    assert first.terminate() == 0
    second.wait_logged("scheduler lease taken", timeout=40)
    assert second.terminate() == 0


def test_a_killed_service_leaves_the_lease_to_the_next(
    tmp_path: Path, demo_corpus: Path, services: list[Service]
) -> None:
    """After kill -9, a new service on this machine takes the lease at once, not after its TTL."""
    site = Site(tmp_path, demo_corpus)
    service = site.start()
    services.append(service)
    service.wait_logged("scheduler lease taken")
    service.process.send_signal(signal.SIGKILL)
    service.process.wait(timeout=10)
    again = site.start()
    services.append(again)
    again.wait_logged("scheduler lease taken", timeout=20)
    assert again.terminate() == 0
