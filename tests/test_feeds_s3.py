"""[feeds] publish = "s3": a build puts the same files in a bucket as in a folder, served alike.

Against a real S3-compatible server (SeaweedFS, tests/support/s3_server.py), read back with
its own client. A build's PUTs are counted from its `feed object put` log lines.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, select

from syndicate.feeds.bucket import Bucket, PublishError
from syndicate.feeds.build import build_feeds
from syndicate.feeds.config import FeedConfig
from syndicate.feeds.layout import MEDIA_TYPES
from syndicate.settings import SettingsError, load_settings
from syndicate.store.schema import dirty_feed, state
from syndicate.workers import WorkerProcesses
from tests.support.cli import syndicate
from tests.support.fixture_corpus import (
    CHANGED_BY_PERSIAN_UPDATE,
    NOW,
    OIL_GAS_RETRACTION,
    PERSIAN_UPDATE,
    ingest_text,
)
from tests.support.ports import free_port
from tests.support.s3_server import S3Bucket, on_bucket

PREFIX = "site/feeds"
MAX_AGE = 120
STORE_LOG = "syndicate.feeds.object_store"


@pytest.fixture
def bucket_config(
    feed_config: FeedConfig, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> FeedConfig:
    """Test feed settings published under a prefix of a fresh bucket; keys in the environment."""
    return on_bucket(feed_config, s3_bucket, monkeypatch, prefix=PREFIX, max_age=MAX_AGE)


@pytest.fixture
def corpus(sqlite_engine: Engine, corpus_text: str) -> Engine:
    """A store holding the fixture corpus."""
    _report, messages = ingest_text(sqlite_engine, corpus_text)
    assert messages == []
    return sqlite_engine


def _objects(s3_bucket: S3Bucket) -> dict[str, bytes]:
    """Every object under the prefix, by its path below it."""
    client = s3_bucket.server.client()
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=s3_bucket.name, Prefix=f"{PREFIX}/"
    )
    return {
        found["Key"].removeprefix(f"{PREFIX}/"): client.get_object(
            Bucket=s3_bucket.name, Key=found["Key"]
        )["Body"].read()
        for page in pages
        for found in page.get("Contents", [])
    }


def _files(folder: Path) -> dict[str, bytes]:
    return {
        path.relative_to(folder).as_posix(): path.read_bytes()
        for path in folder.rglob("*")
        if path.is_file()
    }


def _puts(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The paths below the prefix that the build put, in order, from its log."""
    return [
        record.getMessage().split("key=")[1].split()[0].removeprefix(f"{PREFIX}/")
        for record in caplog.records
        if record.name == STORE_LOG and record.getMessage().startswith("feed object put ")
    ]


def test_a_bucket_holds_exactly_the_files_a_folder_build_writes(
    corpus: Engine, feed_config: FeedConfig, bucket_config: FeedConfig, s3_bucket: S3Bucket
) -> None:
    """Same store, same keys and bytes; each object has the web's media type and Cache-Control."""
    build_feeds(corpus, feed_config, now=NOW)
    report = build_feeds(corpus, bucket_config, now=NOW)
    assert report.mode == "full"  # the empty bucket has no index yet
    folder = _files(Path(feed_config.feeds_dir))
    objects = _objects(s3_bucket)
    assert len(objects) > 50
    assert objects == folder
    client = s3_bucket.server.client()
    for path, body in objects.items():
        head = client.head_object(Bucket=s3_bucket.name, Key=f"{PREFIX}/{path}")
        assert head["ContentType"] == MEDIA_TYPES["." + path.rsplit(".", 1)[1]], path
        assert head["CacheControl"] == f"public, max-age={MAX_AGE}", path
        # A content-hash validator: S3's ETag of a single PUT is the MD5 of the bytes.
        digest = hashlib.md5(body, usedforsecurity=False).hexdigest()
        assert head["ETag"] == f'"{digest}"', path


def test_the_index_is_put_after_every_feed(
    corpus: Engine, bucket_config: FeedConfig, caplog: pytest.LogCaptureFixture
) -> None:
    """A reader of the bucket never finds the index naming a feed that is not there yet."""
    caplog.set_level(logging.DEBUG, logger=STORE_LOG)
    report = build_feeds(corpus, bucket_config, now=NOW)
    puts = _puts(caplog)
    assert len(puts) == report.written + 2
    assert sorted(puts[-2:]) == ["index.html", "index.opml"]
    assert not {"index.html", "index.opml"} & set(puts[:-2])


def test_an_incremental_build_puts_only_the_changed_files(
    corpus: Engine, bucket_config: FeedConfig, s3_bucket: S3Bucket, caplog: pytest.LogCaptureFixture
) -> None:
    """After one article changes, only its feeds are sent again; a rebuild of nothing sends none."""
    build_feeds(corpus, bucket_config, now=NOW)
    client = s3_bucket.server.client()
    caplog.set_level(logging.DEBUG, logger=STORE_LOG)
    caplog.clear()
    report = build_feeds(corpus, bucket_config, now=NOW + timedelta(minutes=5), full=True)
    assert (report.written, _puts(caplog)) == (0, [])
    ingest_text(corpus, json.dumps(PERSIAN_UPDATE))
    report = build_feeds(corpus, bucket_config, now=NOW + timedelta(minutes=6))
    assert report.mode == "incremental"
    assert set(_puts(caplog)) == CHANGED_BY_PERSIAN_UPDATE
    assert report.written == len(CHANGED_BY_PERSIAN_UPDATE)
    stored = client.get_object(Bucket=s3_bucket.name, Key=f"{PREFIX}/fa/all.rss")["Body"].read()
    assert "گزارش تازه".encode() in stored


def test_a_new_max_age_reaches_every_object(
    corpus: Engine, bucket_config: FeedConfig, s3_bucket: S3Bucket
) -> None:
    """Bytes alike but [feeds] max_age changed: each object is put again with the new header."""
    build_feeds(corpus, bucket_config, now=NOW)
    assert bucket_config.bucket is not None
    longer = replace(bucket_config, bucket=replace(bucket_config.bucket, max_age=3600))
    report = build_feeds(corpus, longer, now=NOW + timedelta(minutes=1), full=True)
    objects = _objects(s3_bucket)
    assert report.written == len(objects) - 2  # every feed file; the index files are not counted
    client = s3_bucket.server.client()
    for path in objects:
        head = client.head_object(Bucket=s3_bucket.name, Key=f"{PREFIX}/{path}")
        assert head["CacheControl"] == "public, max-age=3600", path


def test_a_feed_that_ends_is_deleted_from_the_bucket(
    corpus: Engine, bucket_config: FeedConfig, s3_bucket: S3Bucket
) -> None:
    """A retraction that empties a tag deletes its three objects and its index entries."""
    build_feeds(corpus, bucket_config, now=NOW)
    assert "en/tags/oil-gas.rss" in _objects(s3_bucket)
    ingest_text(corpus, json.dumps(OIL_GAS_RETRACTION))
    report = build_feeds(corpus, bucket_config, now=NOW + timedelta(minutes=1))
    assert report.removed >= 1
    objects = _objects(s3_bucket)
    assert not {f"en/tags/oil-gas.{fmt}" for fmt in ("rss", "atom", "json")} & set(objects)
    assert b"oil-gas" not in objects["index.opml"] + objects["index.html"]
    assert b"cms-1007" not in b"".join(objects.values())


def test_a_full_build_deletes_objects_no_feed_accounts_for(
    corpus: Engine, bucket_config: FeedConfig, s3_bucket: S3Bucket
) -> None:
    """A stray feed object under the prefix goes; objects beside the prefix are not touched."""
    client = s3_bucket.server.client()
    client.put_object(Bucket=s3_bucket.name, Key=f"{PREFIX}/en/tags/stale.rss", Body=b"old")
    client.put_object(Bucket=s3_bucket.name, Key="elsewhere/en/tags/stale.rss", Body=b"mine")
    build_feeds(corpus, bucket_config, now=NOW)
    assert "en/tags/stale.rss" not in _objects(s3_bucket)
    kept = client.get_object(Bucket=s3_bucket.name, Key="elsewhere/en/tags/stale.rss")
    assert kept["Body"].read() == b"mine"


def test_an_unreachable_endpoint_fails_the_build_and_records_nothing(
    corpus: Engine, bucket_config: FeedConfig, s3_bucket: S3Bucket
) -> None:
    """The error names [feeds.s3] endpoint_url; nothing is recorded and the next build redoes it."""
    build_feeds(corpus, bucket_config, now=NOW)
    ingest_text(corpus, json.dumps(PERSIAN_UPDATE))
    with corpus.connect() as connection:
        before = (set(connection.scalars(select(dirty_feed.c.key))), _built_at(connection))
    assert before[0]
    assert bucket_config.bucket is not None
    nowhere = replace(bucket_config.bucket, endpoint_url=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(PublishError, match=r"\[feeds\.s3\] endpoint_url"):
        build_feeds(corpus, replace(bucket_config, bucket=nowhere), now=NOW + timedelta(minutes=1))
    with corpus.connect() as connection:
        assert (set(connection.scalars(select(dirty_feed.c.key))), _built_at(connection)) == before
    report = build_feeds(corpus, bucket_config, now=NOW + timedelta(minutes=2))
    assert report.written == len(CHANGED_BY_PERSIAN_UPDATE)
    assert "گزارش تازه".encode() in _objects(s3_bucket)["fa/all.rss"]


def _built_at(connection: Connection) -> str | None:
    return connection.scalar(select(state.c.value).where(state.c.name == "built_at"))


def test_a_worker_pool_publishes_the_same_objects(
    corpus: Engine,
    feed_config: FeedConfig,
    bucket_config: FeedConfig,
    s3_bucket: S3Bucket,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A build spread over worker processes puts exactly what one process writes to a folder."""
    from syndicate.feeds import builder

    build_feeds(corpus, feed_config, now=NOW)
    monkeypatch.setattr(builder, "PARALLEL_THRESHOLD", 1)
    monkeypatch.setattr(builder, "CHUNK", 2)
    monkeypatch.setattr(builder, "FEED_CHUNK", 3)
    pooled = replace(bucket_config, workers=2)
    processes = WorkerProcesses.for_engine(corpus)
    report = build_feeds(corpus, pooled, now=NOW, full=True, processes=processes)
    assert report.feeds > 20
    assert _objects(s3_bucket) == _files(Path(feed_config.feeds_dir))


def test_syndicate_build_names_the_setting_when_the_server_is_unreachable(
    tmp_path: Path, corpus_text: str, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`syndicate build` exits 2 with one line naming [feeds.s3] endpoint_url, no traceback."""
    for name, value in s3_bucket.environment().items():
        monkeypatch.setenv(name, value)
    (tmp_path / "corpus.jsonl").write_text(corpus_text, encoding="utf-8")
    settings = {
        "SYNDICATE_FEEDS__PUBLISH": "s3",
        "SYNDICATE_FEEDS__S3__BUCKET": s3_bucket.name,
        "SYNDICATE_FEEDS__S3__ENDPOINT_URL": f"http://127.0.0.1:{free_port()}/",
        "SYNDICATE_FEEDS__S3__TIMEOUT": "2",
    }
    assert syndicate("ingest", "corpus.jsonl", cwd=tmp_path, env=settings).returncode == 0
    ran = syndicate("build", cwd=tmp_path, env=settings)
    assert ran.returncode == 2
    last = ran.stderr.splitlines()[-1]  # after the build's log lines
    assert last.startswith(f"syndicate: cannot reach the object store: bucket '{s3_bucket.name}'")
    assert "([feeds.s3] endpoint_url)" in last
    assert "Traceback" not in ran.stderr


def test_publishing_to_s3_needs_a_bucket(tmp_path: Path) -> None:
    """With publish = "s3", an empty [feeds.s3] bucket is a settings error naming that key."""
    config = tmp_path / "settings.toml"
    config.write_text('[feeds]\npublish = "s3"\n')
    with pytest.raises(SettingsError, match=r"\[feeds\.s3\] bucket must name a bucket"):
        load_settings(config)


@pytest.mark.parametrize(
    ("line", "key"),
    [
        ('bucket = "Feeds_Bucket"', "feeds.s3.bucket"),
        ('prefix = "/feeds"', "feeds.s3.prefix"),
        ('prefix = "feeds/../other"', "feeds.s3.prefix"),
        ('endpoint_url = "ftp://store.example/"', "feeds.s3.endpoint_url"),
        ("timeout = 0", "feeds.s3.timeout"),
    ],
)
def test_a_bad_s3_setting_is_named(tmp_path: Path, line: str, key: str) -> None:
    """Each [feeds.s3] key is checked when the settings load, and the error names it."""
    config = tmp_path / "settings.toml"
    config.write_text(f"[feeds.s3]\n{line}\n")
    with pytest.raises(SettingsError, match=rf"^setting {key}: "):
        load_settings(config)


def test_the_bucket_comes_from_the_settings_and_leaves_the_fingerprint_alone(
    tmp_path: Path,
) -> None:
    """[feeds.s3] and max_age make the build's bucket; where files go shapes none of them."""
    config = tmp_path / "settings.toml"
    config.write_text(
        '[feeds]\npublish = "s3"\nmax_age = 60\n'
        '[feeds.s3]\nbucket = "news-feeds"\nprefix = "feeds/"\n'
        'endpoint_url = "http://127.0.0.1:8333/"\n'
    )
    settings = load_settings(config)
    published = FeedConfig.from_settings(settings)
    assert published.bucket == Bucket(
        name="news-feeds", prefix="feeds", endpoint_url="http://127.0.0.1:8333/", max_age=60
    )
    folder = FeedConfig.from_settings(load_settings())
    assert folder.bucket is None
    assert published.fingerprint() == folder.fingerprint()
