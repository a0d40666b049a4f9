"""The whole web front as one ASGI app: feeds, pages, archive, subscriptions, health, metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from starlette.routing import Mount

from syndicate.feedback.intake import feedback_rules
from syndicate.feedback.rate_metrics import deliverability_registry
from syndicate.feeds.config import FeedConfig
from syndicate.queue.cluster_metrics import cluster_registry
from syndicate.send.confirmation import confirmation_sender
from syndicate.settings import Settings
from syndicate.store.database import with_lock_timeout
from syndicate.subscribers.links import MOUNT_PATH
from syndicate.subscribers.tokens import secret_key
from syndicate.web.app import create_app
from syndicate.web.archive import archive_routes
from syndicate.web.bucket_feeds import BucketFeeds, open_bucket_feeds
from syndicate.web.subscriptions.app import create_subscription_app
from syndicate.web.webhooks.receiving import Outside
from syndicate.web.webhooks.routes import webhook_routes


def _bucket_feeds(settings: Settings) -> BucketFeeds | None:
    """/feeds/ from the [feeds.s3] bucket when builds publish there, else None (the folder)."""
    bucket = FeedConfig.from_settings(settings).bucket
    if bucket is None:
        return None
    s3 = settings.feeds.s3
    return open_bucket_feeds(bucket, cache_bytes=s3.cache_bytes, cache_seconds=s3.cache_seconds)


def create_site(
    engine: Engine, settings: Settings, *, outside: Outside | None = None
) -> Callable[..., Any]:
    """The app `syndicate serve` and `syndicate run` serve, wired from `settings`.

    `outside` is what the webhooks reach beyond a request (Amazon's hosts, the clock); tests
    give a stand-in.
    """
    # A reader waiting for a page is not a batch job: requests give up on SQLite's write lock
    # sooner ([web] lock_timeout) and answer 503, while jobs on `engine` wait their own bound.
    requests = with_lock_timeout(engine, settings.web.lock_timeout)
    secret = secret_key(engine, settings.security.secret_key.get_secret_value())
    subscriptions = create_subscription_app(
        requests,
        site=settings.site,
        web=settings.web,
        subscribers=settings.subscribers,
        digests=settings.digests,
        secret_key=secret,
        send_confirmation=confirmation_sender(settings, secret),
    )
    routes = [
        Mount(MOUNT_PATH, app=subscriptions),
        *webhook_routes(
            requests,
            settings.bounces.webhooks,
            feedback_rules(engine, settings),
            outside or Outside(),
        ),
        *archive_routes(
            requests,
            site_title=settings.site.title_in,
            web_url=str(settings.web.public_url),
            max_html_bytes=settings.digests.max_html_bytes,
            languages=settings.site.languages,
        ),
    ]
    return create_app(
        settings.feeds.dir,
        feeds=_bucket_feeds(settings),
        max_age=settings.feeds.max_age,
        routes=routes,
        public_url=str(settings.web.public_url),
        languages=settings.site.languages,
        timezone=settings.schedule.timezone,
        more_metrics=[
            deliverability_registry(requests),
            cluster_registry(requests, settings.queue.stalled_seconds),
        ],
    )
