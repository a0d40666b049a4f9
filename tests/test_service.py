"""`syndicate run` end to end: a real process, a real port, the inbox, the schedule, SIGTERM.

Each test starts the service as an operator would, with settings in the environment and a
one-second poll. The tests, not the clock, say when a digest goes out: its scheduled time was
an hour ago (so it does not fire by itself), and `syndicate digest run` asks the running
service for it, as an operator would.
"""

from __future__ import annotations

import mailbox
import signal
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import pytest

from tests.support.articles import article_record
from tests.support.service import Service, Site, an_hour_ago
from tests.support.smtp_server import Serve
from tests.support.waiting import wait_for

FEED = "/feeds/en/all.atom"


def titles(service: Service, path: str = FEED) -> list[str]:
    """The entry titles of a served feed, read by feedparser as a feed reader would."""
    parsed = feedparser.parse(service.get(path).content)
    return [entry.title for entry in parsed.entries]


def titles_with(service: Service, title: str) -> list[str] | None:
    """The served feed's titles once they include `title` (None before)."""
    served = titles(service)
    return served if title in served else None


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
    scheduled = now + timedelta(seconds=6)
    lines = article_record("inbox-1", "Dropped into the inbox", now - timedelta(minutes=1))
    lines += article_record("inbox-2", "Scheduled a few seconds ahead", scheduled)
    lines += '{"type": "article", "id": "broken"}\n'
    staging = site.inbox / ".drop.jsonl"  # written under a hidden name, then moved in whole
    staging.write_text(lines)
    staging.rename(site.inbox / "drop.jsonl")

    served = wait_for(
        lambda: titles_with(service, "Dropped into the inbox"), 60, "the inbox article"
    )
    # Every build served so far ran before this moment; while it is before the scheduled
    # time, none of them may hold the article. (A machine too busy to get here in six
    # seconds has nothing to check: the article may rightly be in.)
    if datetime.now(UTC) < scheduled:
        assert "Scheduled a few seconds ahead" not in served
    wait_for(lambda: "Scheduled a few seconds ahead" in titles(service), 60, "its moment")
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
    assert service.terminate() == 0
    assert "service stopped" in service.log
    assert "Scheduler: not running" in site.cli("status").stdout


def test_a_requested_digest_is_the_edition_of_its_local_day(
    tmp_path: Path, demo_corpus: Path, services: list[Service]
) -> None:
    """The Tehran digest due at 01:00 there (the evening before in UTC) mails that day's edition."""
    zone = ZoneInfo("Asia/Tehran")
    today = datetime.now(UTC).astimezone(zone).date()
    due = datetime.combine(today - timedelta(days=1), time(1, 0), tzinfo=zone)
    assert due.astimezone(UTC).date() != due.date()  # the zone decides the edition's day
    site = Site(tmp_path, demo_corpus)
    site.subscribe([f"reader{n}@example.org" for n in range(12)])
    site.feature("tehran-morning", due - timedelta(minutes=30))
    daily_at, _ = an_hour_ago(zone.key)
    service = site.start(schedule__timezone=zone.key, schedule__daily_at=daily_at)
    services.append(service)
    queued = site.ask_digest("daily", "--due", due.strftime("%Y-%m-%dT%H:%M"))
    edition = f"daily-en-{due.date().isoformat()}"
    assert f"due {due.isoformat()} (Asia/Tehran), edition date {due.date().isoformat()}" in queued
    wait_for(lambda: len(mailbox.Maildir(site.outbox).keys()) == 12, 120, "12 messages")
    service.wait_logged("digest finished kind=daily")
    assert f"due={due.astimezone(UTC).isoformat()} result=ok" in service.log
    assert f"{edition}: 12 sent, 0 failed" in service.log
    status = site.cli("status").stdout.splitlines()
    last_run = status[status.index(f"digest-daily  ({daily_at})") + 1]  # recorded as scheduled
    assert " ok  (" in last_run
    assert last_run.endswith(f"due {due:%Y-%m-%d %H:%M:%S} +0330")
    assert f"  {edition}  12 sent, 0 bounced, 0 deferred, 0 failed" in "\n".join(status)
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
    daily_at, due = an_hour_ago("UTC")
    site.feature("sigterm", due - timedelta(minutes=30))
    service = site.start(schedule__daily_at=daily_at, **mail)
    services.append(service)
    assert f"due {due.isoformat()} (UTC)" in site.ask_digest("daily")
    wait_for(lambda: len(smtp.received) >= 20, 120, "the send to be under way")
    assert service.terminate() == 0
    stopped_at = len(smtp.received)
    assert stopped_at < len(people), "the send finished before SIGTERM; nothing was tested"
    assert "result=stopped" in service.log

    again = site.start()
    services.append(again)
    again.wait_logged(f"digest catch-up kind=daily due={due.isoformat()}")
    wait_for(lambda: len(smtp.received) >= len(people), 300, "everyone to be reached")
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
    daily_at, due = an_hour_ago("UTC")
    site.feature("two-services", due - timedelta(minutes=30))
    first = site.start(schedule__daily_at=daily_at)
    second = site.start(schedule__daily_at=daily_at)
    services += [first, second]
    second.wait_logged("scheduler standby")
    assert f":{first.process.pid}:" in site.ask_digest("daily")  # the leader is named
    wait_for(lambda: len(mailbox.Maildir(site.outbox).keys()) >= 30, 120, "30 messages")
    first.wait_logged("digest finished kind=daily")
    once_each = Counter({f"Reader <reader{n}@example.org>": 1 for n in range(30)})
    assert Counter(message["To"] for message in mailbox.Maildir(site.outbox)) == once_each
    assert "digest requested" not in second.log
    assert "digest finished" not in second.log
    # When the leader goes, the standby takes over the schedule and the requests; the ledger
    # knows everyone has the edition, so asking again sends nobody anything.
    assert first.terminate() == 0
    second.wait_logged("scheduler lease taken", timeout=120)
    assert f":{second.process.pid}:" in site.ask_digest("daily")
    second.wait_logged("digest finished kind=daily")
    assert "0 sent, 0 failed" in second.log
    assert Counter(message["To"] for message in mailbox.Maildir(site.outbox)) == once_each
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
    service.process.wait(timeout=30)
    again = site.start()
    services.append(again)
    again.wait_logged("scheduler lease taken")
    assert again.terminate() == 0
