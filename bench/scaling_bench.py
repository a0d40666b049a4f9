"""Scaling benchmark: one edition sent by 1, 2 and 4 `syndicate worker`s sharing PostgreSQL.

Run it with `make bench` (everything), `bench/run scaling` (this one alone) or
`.venv/bin/python bench/scaling_bench.py [--subscribers N] [--slow N] [--no-record]`.
It needs PostgreSQL (`bench/run` starts the suite's own cluster with `.ci/postgres`, or set
SYNDICATE_BENCH_POSTGRES_URL to a role that may create databases) and Postfix's `smtp-sink`.

Two measures, in one run:
- Scaling. smtp-sink answers each DATA after a second (`-w 1`), as a distant relay that takes
  its time would, so a send is bound by waiting, not by this machine's two cores. The same
  edition goes to `--slow` subscribers with 1, 2 and 4 workers of `pool_size` connections
  each; efficiency at N workers is rate(N) / (N x rate(1)).
- Overhead. With no delay, one worker sends `--subscribers` through the queue; the reference is
  today's single process, `syndicate digest send` on SQLite with `[mail] processes = 1`, to
  the same subscribers and edition, against the same sink, in the same run.

Every send starts from an empty ledger and is timed as `syndicate digest send` (which on
PostgreSQL queues the batches and waits until every one is done), start-up included.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from feeds_bench import hold_folder, machine, record
from newsletter_bench import (
    ARTICLES,
    CORPUS_MOMENT,
    DAY,
    SYNDICATE,
    Sink,
    code_version,
    cpu_usage,
    environment,
    log,
    neighbours,
    prepare,
    run,
    timed_child,
    write_subscribers,
)
from newsletter_bench import OUT as NEWSLETTER_OUT
from newsletter_bench import clear_ledger as clear_sqlite_ledger
from syndicate.settings import QueueSettings

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "scaling"
POOL = 8  # connections a worker keeps, in the overhead measure (as the newsletter benchmark)
SLOW_POOL = 16  # connections a worker keeps against the slow sink
SLOW_BATCH = 48  # subscribers a batch, against the slow sink: several batches for every worker
BATCH = QueueSettings().send_batch  # the default, in the overhead measure
# Today's single process on a PostgreSQL store: the send `syndicate digest send` runs on SQLite
# (send.processes.send, no helper processes), started here since on PostgreSQL the command queues.
IN_PROCESS = """
import sys
from syndicate.digests.editions import load_edition
from syndicate.send.processes import send
from syndicate.settings import load_settings
from syndicate.store import open_database

settings = load_settings()
engine = open_database(settings.database.url)
print(send(engine, settings, load_edition(engine, sys.argv[1])).summary())
"""
WORKERS = (1, 2, 4)


def admin_url() -> str:
    """A PostgreSQL URL whose role may create databases: given, or the suite's own cluster."""
    given = os.environ.get("SYNDICATE_BENCH_POSTGRES_URL")
    if given:
        return given
    started = subprocess.run([str(ROOT / ".ci" / "postgres")], capture_output=True, text=True)
    if started.returncode != 0:
        raise SystemExit(f"bench: cannot start PostgreSQL:\n{started.stderr[-2000:]}")
    return started.stdout.strip()


def libpq(url: str) -> str:
    """The libpq form of a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def fresh_database(admin: str, name: str) -> str:
    """Drop and create database `name`; its SQLAlchemy URL."""
    with psycopg.connect(libpq(admin), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def pg_environment(url: str, port: int, pool: int, batch: int) -> dict[str, str]:
    """Settings for the PostgreSQL store at `url`, sending to smtp-sink on `port`."""
    env = environment(Path("unused.db"), port)
    env.update(
        {
            "SYNDICATE_DATABASE__URL": url,
            "SYNDICATE_MAIL__SMTP__POOL_SIZE": str(pool),
            "SYNDICATE_QUEUE__SEND_BATCH": str(batch),
        }
    )
    return env


def prepare_postgres(url: str, count: int, corpus: Path) -> str:
    """Ingest the corpus, import `count` subscribers and build the edition; its id."""
    env = pg_environment(url, 25, POOL, BATCH)
    log(f"{make_url(url).database}: ingesting the corpus and {count:,} subscribers")
    run([*SYNDICATE, "ingest", str(corpus)], env)
    table = OUT / f"subscribers-{count}.csv"
    write_subscribers(table, count)
    run([*SYNDICATE, "subscribers", "import", str(table), "--confirmed"], env)
    built = run([*SYNDICATE, "digest", "build", "daily", "--date", DAY, "--lang", "en"], env)
    return built.strip().splitlines()[-1]


def clear_ledger(url: str, edition: str) -> None:
    """Forget every delivery of `edition`, so the next send goes to everyone again."""
    with psycopg.connect(libpq(url), autocommit=True) as connection:
        connection.execute("DELETE FROM delivery WHERE edition_id = %s", (edition,))


class Workers:
    """`syndicate worker` processes, started and waited for, stopped with SIGTERM."""

    def __init__(self, count: int, env: dict[str, str]) -> None:
        """Start `count` workers and wait until each says it has started."""
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []
        for number in range(count):
            name = f"bench-{number + 1}"
            log_path = OUT / f"{name}.log"
            with log_path.open("wb") as sink:
                process = subprocess.Popen(
                    [*SYNDICATE, "worker", "--name", name], env=env, cwd=ROOT,
                    stdout=subprocess.DEVNULL, stderr=sink,
                )  # fmt: skip
            self.processes.append((process, log_path))
        deadline = time.monotonic() + 60
        for process, log_path in self.processes:
            while b"worker started" not in log_path.read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"bench: a worker did not start:\n{log_path.read_text()}")
                time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM every worker and wait for it to end."""
        for process, _ in self.processes:
            process.send_signal(signal.SIGTERM)
        for process, _ in self.processes:
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def timed_send(
    sink: Sink, env: dict[str, str], edition: str, expected: int, command: list[str] | None = None
) -> dict[str, Any]:
    """Time a send of `edition` to everyone, checked against the sink's count.

    The send is `syndicate digest send` unless `command` names another.
    """
    before = sink.received()
    measured = timed_child(command or [*SYNDICATE, "digest", "send", edition], env)
    received = sink.received() - before
    summary = measured.stdout.strip().splitlines()[-1] if measured.stdout.strip() else ""
    found = re.search(r"(\d+) sent, (\d+) failed", summary)
    if found is None:
        raise SystemExit(f"bench: unexpected send summary: {measured.stdout!r}")
    sent, failed = int(found.group(1)), int(found.group(2))
    if failed or sent != expected or received != expected:
        raise SystemExit(f"bench: send incomplete: {summary}; the sink counted {received}")
    log(f"{summary}; wall {measured.seconds:.1f}s")
    return {"sent": sent, "seconds": measured.seconds, "rate": sent / measured.seconds}


def with_workers(
    count: int, sink: Sink, env: dict[str, str], url: str, edition: str, expected: int
) -> dict[str, Any]:
    """One send by `count` fresh workers, from an empty ledger."""
    clear_ledger(url, edition)
    workers = Workers(count, env)
    try:
        return timed_send(sink, env, edition, expected)
    finally:
        workers.stop()


def main() -> None:
    """Prepare the stores, measure scaling and overhead, and append the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=20_000, help="the overhead send")
    parser.add_argument("--slow", type=int, default=960, help="each send to the slow sink")
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args()
    _held = hold_folder(OUT, "scaling")  # the lock lasts while this name does: the whole run
    NEWSLETTER_OUT.mkdir(parents=True, exist_ok=True)
    corpus = NEWSLETTER_OUT / f"corpus-{ARTICLES}.jsonl"
    if not corpus.exists():
        with corpus.open("w") as handle:
            subprocess.run([*SYNDICATE, "demo-data", "--articles", str(ARTICLES), "--seed", "7",
                            "--now", CORPUS_MOMENT], stdout=handle, check=True, cwd=ROOT)  # fmt: skip
    version = code_version()
    admin = admin_url()
    reference_store = prepare(args.subscribers, corpus)  # SQLite, the newsletter benchmark's
    large_url = fresh_database(admin, "syndicate_bench_scaling")
    large = prepare_postgres(large_url, args.subscribers, corpus)
    slow_url = fresh_database(admin, "syndicate_bench_scaling_slow")
    slow = prepare_postgres(slow_url, args.slow, corpus)

    machine_before = cpu_usage()
    started = time.perf_counter()
    sink = Sink()
    try:
        sqlite_env = environment(Path(reference_store["database"]), sink.port)
        sqlite_env["SYNDICATE_MAIL__PROCESSES"] = "1"
        clear_sqlite_ledger(Path(reference_store["database"]), str(reference_store["edition"]))
        log("overhead: today's single process on SQLite")
        single = timed_send(sink, sqlite_env, str(reference_store["edition"]), args.subscribers)
        log("overhead: today's single process on PostgreSQL")
        pg_env = pg_environment(large_url, sink.port, POOL, BATCH)
        clear_ledger(large_url, large)
        in_pg = timed_send(
            sink, pg_env, large, args.subscribers, [sys.executable, "-c", IN_PROCESS, large]
        )
        log("overhead: one worker through the queue")
        queued = with_workers(
            1, sink, pg_environment(large_url, sink.port, POOL, BATCH), large_url, large,
            args.subscribers,
        )  # fmt: skip
    finally:
        sink.close()
    slow_sink = Sink(delay=1)
    scaled: dict[int, dict[str, Any]] = {}
    try:
        env = pg_environment(slow_url, slow_sink.port, SLOW_POOL, SLOW_BATCH)
        for count in WORKERS:
            log(f"scaling: {count} worker(s), smtp-sink -w 1")
            scaled[count] = with_workers(count, slow_sink, env, slow_url, slow, args.slow)
    finally:
        slow_sink.close()
    shared = neighbours(machine_before, time.perf_counter() - started)

    overhead = queued["rate"] / in_pg["rate"]
    store_cost = in_pg["rate"] / single["rate"]
    efficiency = {n: scaled[n]["rate"] / (n * scaled[1]["rate"]) for n in WORKERS}
    met_scaling = "met" if efficiency[4] >= 0.8 else "**missed**"
    met_overhead = "met" if overhead >= 0.9 else "**missed**"
    command = os.environ.get("BENCH_COMMAND") or " ".join(
        [".venv/bin/python bench/scaling_bench.py", *sys.argv[1:]]
    )
    rows = "\n".join(
        f"| {n} worker{'s' if n > 1 else ''} | {scaled[n]['rate']:,.1f} msg/s "
        f"({scaled[n]['sent']:,} in {scaled[n]['seconds']:.1f} s) | {efficiency[n]:.2f} |"
        for n in WORKERS
    )
    section = f"""
## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: scaling

- Machine: {machine()}
- Command: `{command}`
- Code: {version}
- Stores: PostgreSQL (`{make_url(admin).render_as_string(hide_password=True)}`), the corpus `syndicate demo-data --articles {ARTICLES} --seed 7 --now {CORPUS_MOMENT}`, confirmed English daily subscribers from the newsletter benchmark's generator, edition `{large}`; the reference store is the newsletter benchmark's SQLite store of {args.subscribers:,}
- Scaling: Postfix `smtp-sink -w 1` (a second before answering each DATA, as a slow relay); each worker `pool_size = {SLOW_POOL}`, `[queue] send_batch = {SLOW_BATCH}`; {args.slow:,} subscribers; fresh workers and an empty ledger for each send

| workers | sent / wall time of `syndicate digest send` | efficiency rate(N) / (N x rate(1)) |
| --- | --- | --- |
{rows}

Efficiency at 4 workers: {efficiency[4]:.2f} (target ≥ 0.8: {met_scaling}).

- Overhead: smtp-sink with no delay, {args.subscribers:,} subscribers, `pool_size = {POOL}`

| send | rate |
| --- | --- |
| today's single process on SQLite: `syndicate digest send`, `[mail] processes = 1` | {single["rate"]:,.0f} msg/s ({single["seconds"]:.1f} s) |
| today's single process on PostgreSQL: the same send (`send.processes.send`) started by `python -c` | {in_pg["rate"]:,.0f} msg/s ({in_pg["seconds"]:.1f} s) |
| one `syndicate worker` through the queue on PostgreSQL, `[queue] send_batch = {BATCH}` (`syndicate digest send` queues and waits) | {queued["rate"]:,.0f} msg/s ({queued["seconds"]:.1f} s) |
| ratio queue / single process, same store (PostgreSQL) | {overhead:.2f} (target ≥ 0.9: {met_overhead}) |
| ratio single process PostgreSQL / SQLite: the store's own cost (its commits), not the queue's | {store_cost:.2f} |

Shared the machine: {shared}.
"""
    print(section)
    if not args.no_record:
        record(section)


def _stop(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit, so the sinks and workers are stopped on the way out."""
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    main()
