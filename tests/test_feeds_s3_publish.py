"""A full build's publish to a bucket: one listing, unchanged files skipped, deletes batched.

Against a real SeaweedFS (tests/support/s3_server.py). What was sent is read from the server
itself (each object's ETag and Last-Modified) and from the store's `feed object` log lines.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import Engine

from syndicate.feeds.build import build_feeds
from syndicate.feeds.config import FeedConfig
from tests.support.fixture_corpus import CHANGED_BY_PERSIAN_UPDATE, NOW, PERSIAN_UPDATE, ingest_text
from tests.support.s3_server import S3Bucket, on_bucket

PREFIX = "feeds"
STORE_LOG = "syndicate.feeds.object_store"
INDEX = {"index.html", "index.opml"}


@pytest.fixture
def config(
    feed_config: FeedConfig, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> FeedConfig:
    """Test feed settings published under a prefix of a fresh bucket; keys in the environment."""
    return on_bucket(feed_config, s3_bucket, monkeypatch, prefix=PREFIX)


@pytest.fixture
def store(sqlite_engine: Engine, corpus_text: str) -> Engine:
    """A store holding the fixture corpus."""
    ingest_text(sqlite_engine, corpus_text)
    return sqlite_engine


def _listing(s3_bucket: S3Bucket) -> dict[str, tuple[str, object]]:
    """Each object below the prefix: its ETag and Last-Modified, as the server lists them."""
    client = s3_bucket.server.client()
    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket=s3_bucket.name, Prefix=f"{PREFIX}/"
    )
    return {
        found["Key"].removeprefix(f"{PREFIX}/"): (found["ETag"], found["LastModified"])
        for page in pages
        for found in page.get("Contents", [])
    }


def _events(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    """("put" or "deleted", path below the prefix) for each object the build changed, in order."""
    found = []
    for record in caplog.records:
        message = record.getMessage()
        if record.name == STORE_LOG and message.startswith(("feed object put", "feed object del")):
            key = message.split("key=")[1].split()[0].removeprefix(f"{PREFIX}/")
            found.append((message.split()[2], key))
    return found


def test_the_server_lists_each_objects_md5_as_its_etag(
    store: Engine, config: FeedConfig, s3_bucket: S3Bucket
) -> None:
    """What the fast publish relies on: a listed ETag is the MD5 of the object's bytes."""
    build_feeds(store, config, now=NOW)
    client = s3_bucket.server.client()
    listed = _listing(s3_bucket)
    assert len(listed) > 50
    for path, (etag, _modified) in listed.items():
        body = client.get_object(Bucket=s3_bucket.name, Key=f"{PREFIX}/{path}")["Body"].read()
        assert etag == f'"{hashlib.md5(body, usedforsecurity=False).hexdigest()}"', path


def test_a_full_rebuild_puts_only_what_changed(
    store: Engine, config: FeedConfig, s3_bucket: S3Bucket, caplog: pytest.LogCaptureFixture
) -> None:
    """After one article changes, a full build sends its fifteen files; the rest stay as stored."""
    build_feeds(store, config, now=NOW)
    before = _listing(s3_bucket)
    ingest_text(store, json.dumps(PERSIAN_UPDATE))
    caplog.set_level(logging.DEBUG, logger=STORE_LOG)
    report = build_feeds(store, config, now=NOW + timedelta(minutes=5), full=True)
    assert report.mode == "full"
    assert {path for _event, path in _events(caplog)} == CHANGED_BY_PERSIAN_UPDATE
    assert (report.written, report.unchanged) == (
        len(CHANGED_BY_PERSIAN_UPDATE),
        len(before) - 2 - len(CHANGED_BY_PERSIAN_UPDATE),
    )
    checked = [
        record.getMessage().split("key=")[1].removeprefix(f"{PREFIX}/")
        for record in caplog.records
        if record.getMessage().startswith("feed object checked")
    ]
    # One listing instead of a HEAD a file: only the index is looked at, once for the header
    # its objects carry ([feeds] max_age) and once each as it is written.
    assert sorted(checked) == ["index.html", "index.opml", "index.opml"]
    after = _listing(s3_bucket)
    assert set(after) == set(before)
    assert {path for path in after if after[path] != before[path]} == CHANGED_BY_PERSIAN_UPDATE


def test_an_object_whose_etag_is_not_an_md5_is_checked_by_its_metadata(
    store: Engine, config: FeedConfig, s3_bucket: S3Bucket
) -> None:
    """A multipart upload of the same bytes (ETag "…-1", no hash metadata) is put again."""
    build_feeds(store, config, now=NOW)
    client = s3_bucket.server.client()
    key = f"{PREFIX}/en/all.rss"
    body = client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read()
    upload = client.create_multipart_upload(Bucket=s3_bucket.name, Key=key)["UploadId"]
    part = client.upload_part(
        Bucket=s3_bucket.name, Key=key, UploadId=upload, PartNumber=1, Body=body
    )
    client.complete_multipart_upload(
        Bucket=s3_bucket.name,
        Key=key,
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )
    assert _listing(s3_bucket)["en/all.rss"][0].endswith('-1"')
    report = build_feeds(store, config, now=NOW + timedelta(minutes=1), full=True)
    assert report.written == 1
    head = client.head_object(Bucket=s3_bucket.name, Key=key)
    assert head["Metadata"]["sha256"] == hashlib.sha256(body).hexdigest()
    assert head["ContentType"] == "application/rss+xml; charset=utf-8"


def test_ended_feeds_are_deleted_before_the_index_is_written(
    store: Engine, config: FeedConfig, s3_bucket: S3Bucket, caplog: pytest.LogCaptureFixture
) -> None:
    """Stray feed objects go in one batch; then the index, which no longer names them."""
    build_feeds(store, config, now=NOW)
    client = s3_bucket.server.client()
    strays = {f"en/tags/gone-{n}.{fmt}" for n in range(3) for fmt in ("rss", "atom", "json")}
    for path in strays:
        client.put_object(Bucket=s3_bucket.name, Key=f"{PREFIX}/{path}", Body=b"old")
    client.delete_object(Bucket=s3_bucket.name, Key=f"{PREFIX}/index.opml")
    caplog.set_level(logging.DEBUG, logger=STORE_LOG)
    build_feeds(store, config, now=NOW + timedelta(minutes=1), full=True)
    events = _events(caplog)
    assert {path for event, path in events if event == "deleted"} == strays
    assert events[-1] == ("put", "index.opml")  # the only index file whose bytes were missing
    assert not strays & set(_listing(s3_bucket))
