"""Feed benchmark: build times and memory on a large corpus, and serving speed against nginx.

Run it with `make bench` (or `bench/run`). It needs Debian's `nginx` and `wrk` on PATH
(`apt-get install nginx wrk`). Results are appended to bench/RESULTS.md with the machine,
command and date, so runs on different days and machines can be compared.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
RESULTS = ROOT / "bench" / "RESULTS.md"
SYNDICATE = [sys.executable, "-m", "syndicate"]
CORPUS_MOMENT = "2026-11-01T12:00:00+00:00"


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(folder: Path, port: int = 8000) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYNDICATE_")}
    env.update(
        {
            "SYNDICATE_DATABASE__URL": f"sqlite:///{folder / 'bench.db'}",
            "SYNDICATE_FEEDS__DIR": str(folder / "feeds"),
            "SYNDICATE_WEB__PORT": str(port),
            "SYNDICATE_WEB__PUBLIC_URL": f"http://127.0.0.1:{port}/",
        }
    )
    return env


def tree_rss_kib(root: int) -> int:
    """Resident memory of a process and all its descendants, in KiB, read from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            status = (entry / "status").read_text()
        except OSError:
            continue  # the process ended while we looked
        children.setdefault(int(fields[1]), []).append(int(entry.name))
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        rss[int(entry.name)] = int(found.group(1)) if found else 0
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def timed_child(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run a command; return wall seconds, its whole process tree's peak memory, and stdout.

    Memory is sampled every 50 ms and summed over the child and its descendants (MiB), so a
    build's worker processes count too.
    """
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=err, text=True)
        peak = 0
        while child.poll() is None:
            peak = max(peak, tree_rss_kib(child.pid))
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed ({child.returncode}):\n{err.read()[-3000:]}")
        return seconds, peak // 1024, out.read()


def make_corpus(articles: int, tags: int) -> Path:
    corpus = OUT / f"corpus-{articles}-{tags}.jsonl"
    if not corpus.exists():
        log(f"generating {articles} articles with {tags} tags")
        with corpus.open("w") as handle:
            subprocess.run(
                [*SYNDICATE, "demo-data", "--articles", str(articles), "--tags", str(tags),
                 "--seed", "7", "--now", CORPUS_MOMENT],
                stdout=handle, check=True, cwd=ROOT,
            )  # fmt: skip
    return corpus


def count_tags(corpus: Path) -> tuple[int, int, int]:
    articles = tags = 0
    names: set[str] = set()
    topics: set[str] = set()
    with corpus.open() as handle:
        for line in handle:
            record = json.loads(line)
            if record["type"] == "article":
                articles += 1
                names.update(record.get("tags", []))
            elif record["type"] == "topic":
                topics.add(record["slug"])
    tags = len(names)
    return articles, tags, len(topics)


def newest_article(corpus: Path) -> dict[str, object]:
    """The newest published, tagged article: the one whose change touches the most feeds."""
    moment = datetime.fromisoformat(CORPUS_MOMENT)
    newest: dict[str, object] = {}
    with corpus.open() as handle:
        for line in handle:
            record = json.loads(line)
            if (
                record["type"] == "article"
                and record["status"] == "published"
                and record.get("tags")
                and datetime.fromisoformat(record["published_at"]) <= moment
            ):
                newest = record  # the stream is in time order
    return newest


def incremental_once(
    env: dict[str, str], article: dict[str, object], round_number: int
) -> tuple[float, int]:
    """Change one article (a newer title) and time the in-process build that follows."""
    record = dict(article)
    record["title"] = f"{record['title']} (update {round_number})"
    record["updated_at"] = datetime.now(UTC).isoformat()
    subprocess.run([*SYNDICATE, "ingest", "-"], input=json.dumps(record) + "\n", text=True,
                   env=env, cwd=ROOT, check=True, capture_output=True)  # fmt: skip
    code = (
        "import sys, time\n"
        "from syndicate.settings import load_settings\n"
        "from syndicate.store import open_database\n"
        "from syndicate.feeds.build import build_feeds\n"
        "from syndicate.feeds.config import FeedConfig\n"
        "from syndicate.workers import WorkerProcesses\n"
        "settings = load_settings()\n"
        "engine = open_database(settings.database.url)\n"
        "config = FeedConfig.from_settings(settings)\n"
        "started = time.perf_counter()\n"
        "report = build_feeds(engine, config, processes=WorkerProcesses.for_engine(engine))\n"
        "print(time.perf_counter() - started, report.mode, report.written)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, text=True,
                            capture_output=True, check=True)  # fmt: skip
    seconds, mode, written = result.stdout.split()
    assert mode == "incremental", result.stdout
    assert int(written) > 0, "the changed article should rewrite its feeds"
    log(f"incremental build {round_number}: {float(seconds):.3f}s, {written} files written")
    return float(seconds), int(written)


def hold_folder(folder: Path, what: str) -> IO[str]:
    """Make `folder` and take its lock, or stop: two runs at once would share it and the machine.

    Keep the returned file open for as long as the run uses the folder.
    """
    folder.mkdir(parents=True, exist_ok=True)
    lock = (folder / ".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        where = folder.relative_to(ROOT)
        raise SystemExit(
            f"bench: another {what} benchmark is using {where}; "
            "two at once would share its files and the machine"
        ) from None
    return lock


def record(row: str) -> None:
    """Append one run's section to bench/RESULTS.md, starting the file if need be."""
    if not RESULTS.exists():
        RESULTS.write_text(
            "# Benchmark results\n\nNewest last. Each entry is one run of `make bench`.\n"
        )
    with RESULTS.open("a") as handle:
        handle.write(row)


def wait_for(url_port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", url_port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listening on port {url_port}")


def wrk(url: str, seconds: int, header: str | None = None) -> float:
    args = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency"]
    if header:
        args += ["-H", header]
    result = subprocess.run([*args, url], capture_output=True, text=True, check=True)
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    statuses = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    if match is None or statuses is not None:
        raise SystemExit(f"wrk failed or saw errors:\n{result.stdout}")
    return float(match.group(1))


def etag_of(port: int, path: str) -> str:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as response:
        return str(response.headers["ETag"])


def serve_and_measure(
    folder: Path, env: dict[str, str], feed: str, seconds: int
) -> dict[str, float]:
    """Requests/second for a 200 and a 304 on one feed: Syndicate's server, then nginx."""
    port = int(env["SYNDICATE_WEB__PORT"])
    server = subprocess.Popen([*SYNDICATE, "serve"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    nginx_dir = Path(tempfile.mkdtemp(prefix="syndicate-nginx-"))
    nginx_port = free_port()
    (nginx_dir / "nginx.conf").write_text(
        f"""
worker_processes 1;
pid {nginx_dir}/nginx.pid;
error_log {nginx_dir}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    types {{ application/rss+xml rss; application/atom+xml atom; application/feed+json json; }}
    client_body_temp_path {nginx_dir}; proxy_temp_path {nginx_dir};
    fastcgi_temp_path {nginx_dir}; uwsgi_temp_path {nginx_dir}; scgi_temp_path {nginx_dir};
    server {{
        listen 127.0.0.1:{nginx_port};
        location /feeds/ {{ alias {folder / "feeds"}/; etag on; }}
    }}
}}
"""
    )
    nginx = subprocess.Popen(["nginx", "-c", str(nginx_dir / "nginx.conf"), "-g", "daemon off;"])
    try:
        wait_for(port)
        wait_for(nginx_port)
        results = {}
        for name, target in (("syndicate", port), ("nginx", nginx_port)):
            url = f"http://127.0.0.1:{target}/feeds/{feed}"
            etag = etag_of(target, f"/feeds/{feed}")
            results[f"{name}_200"] = wrk(url, seconds)
            results[f"{name}_304"] = wrk(url, seconds, f"If-None-Match: {etag}")
            log(f"{name}: 200 {results[f'{name}_200']:.0f}/s, 304 {results[f'{name}_304']:.0f}/s")
        return results
    finally:
        server.send_signal(signal.SIGTERM)
        nginx.send_signal(signal.SIGQUIT)
        server.wait(timeout=30)
        nginx.wait(timeout=30)
        shutil.rmtree(nginx_dir, ignore_errors=True)


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--tags", type=int, default=5_000)
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="incremental builds to time")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    folder = OUT / "run"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    port = free_port()
    env = environment(folder, port)

    corpus = make_corpus(args.articles, args.tags)
    articles, tags, topics = count_tags(corpus)
    log(f"corpus: {articles} articles, {tags} distinct tags, {topics} topics")
    ingest_seconds, ingest_peak, _ = timed_child([*SYNDICATE, "ingest", str(corpus)], env)
    log(f"ingest: {ingest_seconds:.1f}s, peak {ingest_peak} MiB")
    build_seconds, build_peak, summary = timed_child([*SYNDICATE, "build", "--full"], env)
    log(f"full build: {build_seconds:.1f}s, peak {build_peak} MiB: {summary.strip()}")
    feed_files = sum(1 for _ in (folder / "feeds").rglob("*.*"))
    changed = newest_article(corpus)
    measured = [incremental_once(env, changed, number) for number in range(1, args.rounds + 1)]
    rounds = [seconds for seconds, _ in measured]
    serving = serve_and_measure(folder, env, "en/all.rss", args.seconds)

    incremental = statistics.median(rounds)
    ratio_304 = serving["syndicate_304"] / serving["nginx_304"]
    ratio_200 = serving["syndicate_200"] / serving["nginx_200"]
    command = " ".join(["make bench", *sys.argv[1:]])
    row = f"""
## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC

- Machine: {machine()}
- Command: `{command}`
- Corpus: {articles:,} articles, {tags:,} distinct tags, {topics} topics (`syndicate demo-data --articles {args.articles} --tags {args.tags} --seed 7`)
- Feeds written: {feed_files:,} files

| measure | result | target |
| --- | --- | --- |
| ingest (whole corpus, CLI wall time) | {ingest_seconds:.1f} s, peak {ingest_peak} MiB | |
| full build (`syndicate build --full`, wall time) | {build_seconds:.1f} s | < 30 s |
| full build peak memory (all its processes, RSS summed) | {build_peak} MiB | < 500 MB |
| incremental build after one article changes (median of {len(rounds)}, in-process; {measured[0][1]} files rewritten) | {incremental * 1000:.0f} ms (all: {", ".join(f"{r * 1000:.0f}" for r in rounds)}) | < 200 ms |
| built-in server, 200 on en/all.rss | {serving["syndicate_200"]:,.0f} req/s | |
| nginx, 200 on the same file | {serving["nginx_200"]:,.0f} req/s | |
| ratio 200 (Syndicate / nginx) | {ratio_200:.2f} | |
| built-in server, 304 (If-None-Match) | {serving["syndicate_304"]:,.0f} req/s | |
| nginx, 304 | {serving["nginx_304"]:,.0f} req/s | |
| ratio 304 (Syndicate / nginx) | {ratio_304:.2f} | ≥ 0.25 |

wrk: `wrk -t2 -c32 -d{args.seconds}s` on 127.0.0.1, one uvicorn process vs nginx with one worker
(`worker_processes 1`), same machine, same run, same file.
"""
    record(row)
    print(row)


if __name__ == "__main__":
    main()
