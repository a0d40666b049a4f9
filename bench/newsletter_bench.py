"""Newsletter benchmark: one daily edition to 100,000 subscribers over SMTP, against smtp-source.

Run it with `make bench` (everything), `bench/run newsletters` (this one alone) or
`.venv/bin/python bench/newsletter_bench.py [--subscribers N] [--small N] [--no-record]`.
It needs Postfix's `smtp-sink` and `smtp-source` (Debian `postfix`; no mail system is
configured or started: the sink runs alone on a free loopback port). The stores are prepared
once in bench/out/newsletters/ and reused while they exist; delete that folder to start afresh.

In one run, against one sink: `smtp-source` sends as many messages of Syndicate's average size
over as many kept connections as the pool has; then `syndicate digest send` sends the edition
without DKIM, with DKIM (an RSA-2048 key made here), and to a store of `--small` subscribers
(memory must not grow with the list). Rates, ratios and peak memory are appended to
bench/RESULTS.md with the machine, command, code version and date. `--profile N` instead
cProfiles a send to N subscribers in this process and prints where the time goes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from feeds_bench import free_port, hold_folder, machine, record, tree_rss_kib, wait_for

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "newsletters"
RESULTS = ROOT / "bench" / "RESULTS.md"
SYNDICATE = [sys.executable, "-m", "syndicate"]
CORPUS_MOMENT = "2026-11-01T12:00:00+00:00"
DAY = "2026-10-31"  # the last whole day of the corpus: a full daily edition
ARTICLES = 3_000
POOL = 8
SECRET = "benchmark secret key, long enough to sign tokens"  # noqa: S105 - not a secret
SINK_HEADERS = 110  # bytes of From, To, Date and Message-Id that smtp-source adds to -l
FIRST = ("Amelia", "Oliver", "Zoë", "José", "Mariam", "Hassan", "Søren", "Chloé", "Liam",
         "Fatima", "Noah", "Ana", "Łukasz", "Mei", "Omar", "Ingrid", "Tariq", "Grace")  # fmt: skip
LAST = ("Smith", "O'Brien", "Müller", "García", "Haddad", "Nguyen", "Karimi", "Johansson",
        "Dubois", "Kowalski", "Rahman", "Brown", "Jones", "Rossi")  # fmt: skip
TOPICS = ("ansarullah", "shiite", "resistance", "gcc", "taliban", "wahhabism-extremism", "kurds",
          "nato", "islamic-awakening", "al-qaeda")  # fmt: skip
DOMAINS = ("example.org", "example.com", "example.net", "mail.example")

PROBE = """
import json, sys, time
from syndicate.delivery.dkim import DkimSigner
from syndicate.delivery.recording import RecordingTransport
from syndicate.digests.editions import load_edition
from syndicate.send.plan import plan_send
from syndicate.settings import load_settings
from syndicate.store import open_database
from syndicate.store.schema import subscriber
from sqlalchemy import select

settings = load_settings()
engine = open_database(settings.database.url)
edition = load_edition(engine, sys.argv[1])
signer = DkimSigner.from_settings(settings.mail.dkim)
plan = plan_send(engine, settings, edition, RecordingTransport(), signer)
with engine.connect() as connection:
    people = plan.page(connection, 0, int(sys.argv[2]))
    followed = {tuple(t) for t in connection.scalars(select(subscriber.c.topics).distinct())}
variants = {tuple(s.slug for s in edition.topics_for(frozenset(t))) for t in followed}
for person in people:  # compiles every variant these people need
    plan.compose(person)
started = time.process_time()
sizes = [len(plan.compose(person).data) for person in people]
cpu = time.process_time() - started
print(json.dumps({"size": sum(sizes) / len(sizes), "cpu_ms": cpu * 1000 / len(sizes),
                  "variants": len(variants), "sample": len(sizes)}))
"""


def log(message: str) -> None:
    """A progress line on standard error."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


def postfix_tool(name: str) -> str:
    """The path of a Postfix test program (smtp-sink, smtp-source), which lives in /usr/sbin."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise SystemExit(f"bench: {name} not found: apt-get install postfix (bench/run does)")
    return found


def environment(database: Path, port: int, dkim_key: Path | None = None) -> dict[str, str]:
    """Settings for one store, sending by SMTP to 127.0.0.1:`port`, signing with `dkim_key`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYNDICATE_")}
    env.update(
        {
            "SYNDICATE_DATABASE__URL": f"sqlite:///{database}",
            "SYNDICATE_FEEDS__DIR": str(OUT / "feeds"),
            "SYNDICATE_MAIL__TRANSPORT": "smtp",
            "SYNDICATE_MAIL__SMTP__HOST": "127.0.0.1",
            "SYNDICATE_MAIL__SMTP__PORT": str(port),
            "SYNDICATE_MAIL__SMTP__POOL_SIZE": str(POOL),
            "SYNDICATE_SECURITY__SECRET_KEY": SECRET,
            "SYNDICATE_WEB__PUBLIC_URL": "https://news.example/",
        }
    )
    if dkim_key is not None:
        env.update(
            {
                "SYNDICATE_MAIL__DKIM__DOMAIN": "site.example",
                "SYNDICATE_MAIL__DKIM__SELECTOR": "bench",
                "SYNDICATE_MAIL__DKIM__KEY_FILE": str(dkim_key),
            }
        )
    return env


def run(args: list[str], env: dict[str, str]) -> str:
    """Run a command to completion; its standard output, or exit with its error."""
    result = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return str(result.stdout)


@dataclass
class Run:
    """One measured command: wall seconds, memory of its process tree, and what it printed."""

    seconds: float
    peak: int  # MiB, the highest sample
    quarters: list[int]  # MiB, the highest sample in each quarter of the run
    stdout: str


def timed_child(args: list[str], env: dict[str, str]) -> Run:
    """Run a command: its wall time, its process tree's RSS sampled every 50 ms, and stdout."""
    # As feeds_bench's, but it keeps the samples' timeline (does memory climb during the
    # run?) and kills the child if the benchmark itself is stopped.
    started = time.perf_counter()
    samples: list[tuple[float, int]] = []
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        child = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=err, text=True)
        try:
            while child.poll() is None:
                samples.append((time.perf_counter() - started, tree_rss_kib(child.pid) // 1024))
                time.sleep(0.05)
            seconds = time.perf_counter() - started
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"{' '.join(args)} failed ({child.returncode}):\n{err.read()[-3000:]}")
        quarters = [0, 0, 0, 0]
        for moment, mib in samples:
            quarter = min(3, int(4 * moment / seconds))
            quarters[quarter] = max(quarters[quarter], mib)
        return Run(seconds, max(quarters), quarters, out.read())


def write_subscribers(path: Path, count: int) -> tuple[int, int]:
    """A CSV of `count` confirmed English daily readers; how many follow topics, and sets."""
    chooser = random.Random(7)
    followers = 0
    sets: set[tuple[str, ...]] = set()
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("email", "name", "language", "digests", "topics"))
        for number in range(count):
            name = f"{chooser.choice(FIRST)} {chooser.choice(LAST)}"
            topics: tuple[str, ...] = ()
            if chooser.random() < 0.3:  # three in ten follow one to three topics
                topics = tuple(sorted(chooser.sample(TOPICS, chooser.choice((1, 1, 2, 3)))))
                followers += 1
                sets.add(topics)
            address = f"reader{number:06d}@{DOMAINS[number % len(DOMAINS)]}"
            writer.writerow((address, name, "en", "daily", " ".join(topics)))
    return followers, len(sets)


def prepare(count: int, corpus: Path) -> dict[str, Any]:
    """The store of `count` subscribers with a built edition: made once, then reused."""
    database = OUT / f"store-{count}.db"
    marker = OUT / f"store-{count}.json"
    if database.exists() and marker.exists():
        facts: dict[str, Any] = json.loads(marker.read_text())
        log(f"reusing {database.name} (prepared {facts['prepared']})")
        return facts | {"database": database, "reused": True}
    database.unlink(missing_ok=True)
    env = environment(database, 25)
    log(f"{database.name}: ingesting the corpus")
    run([*SYNDICATE, "ingest", str(corpus)], env)
    table = OUT / f"subscribers-{count}.csv"
    followers, sets = write_subscribers(table, count)
    log(f"{database.name}: importing {count:,} subscribers")
    imported = timed_child([*SYNDICATE, "subscribers", "import", str(table), "--confirmed"], env)
    summary = imported.stdout.strip()
    log(f"import: {imported.seconds:.1f}s, peak {imported.peak} MiB: {summary}")
    built = run([*SYNDICATE, "digest", "build", "daily", "--date", DAY, "--lang", "en"], env)
    edition = built.strip().splitlines()[-1]
    facts = {
        "prepared": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "subscribers": count,
        "followers": followers,
        "topic_sets": sets,
        "import": "a generated CSV through `syndicate subscribers import --confirmed`",
        "import_seconds": round(imported.seconds, 1),
        "import_summary": summary,
        "edition": edition,
    }
    marker.write_text(json.dumps(facts, indent=2))
    return facts | {"database": database, "reused": False}


def dkim_key() -> Path:
    """An RSA-2048 private key in PEM, made once with `cryptography`."""
    path = OUT / "dkim-bench.pem"
    if not path.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return path


def clear_ledger(database: Path, edition: str) -> int:
    """Forget every delivery of `edition`, so the next send goes to everyone again."""
    with sqlite3.connect(database) as connection:
        cleared = connection.execute("DELETE FROM delivery WHERE edition_id = ?", (edition,))
        return cleared.rowcount


def probe(env: dict[str, str], edition: str, sample: int) -> dict[str, float]:
    """Average message size and compose CPU per message, by the send's own code path."""
    return dict(json.loads(run([sys.executable, "-c", PROBE, edition, str(sample)], env)))


class Sink:
    """Postfix's smtp-sink on a free loopback port, counting what it receives."""

    def __init__(self, delay: int = 0) -> None:
        """Start the sink (as nobody when run as root) and wait until it listens.

        With `delay`, it waits that many seconds before answering each DATA, as a distant
        relay would (smtp-sink takes whole seconds only).
        """
        self.port = free_port()
        self.counter = tempfile.NamedTemporaryFile("w+b", prefix="smtp-sink-")  # noqa: SIM115
        args = [postfix_tool("smtp-sink"), "-c", f"127.0.0.1:{self.port}", "1000"]
        if delay:
            args[1:1] = ["-w", str(delay)]
        if os.geteuid() == 0:
            args[1:1] = ["-u", "nobody"]
        self.process = subprocess.Popen(args, stdout=self.counter, stderr=subprocess.DEVNULL)
        wait_for(self.port, timeout=10)

    def received(self) -> int:
        """Messages the sink has taken so far (its -c counter, read from its output)."""
        time.sleep(0.5)  # the counter is written as each session ends
        self.counter.seek(max(0, os.fstat(self.counter.fileno()).st_size - 300))
        counts = re.findall(rb"mesg=(\d+)", self.counter.read())
        return int(counts[-1]) if counts else 0

    def close(self) -> None:
        """Stop the sink and remove its counter file."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.counter.close()


def send(sink: Sink, env: dict[str, str], facts: dict[str, Any]) -> dict[str, Any]:
    """Time `syndicate digest send` of the store's edition to everyone, from an empty ledger."""
    database, edition = Path(facts["database"]), str(facts["edition"])
    cleared = clear_ledger(database, edition)
    before = sink.received()
    measured = timed_child([*SYNDICATE, "digest", "send", edition], env)
    received = sink.received() - before
    summary = measured.stdout.strip()
    found = re.search(r": (\d+) sent, (\d+) failed.* in ([\d.]+)s", summary)
    if found is None:
        raise SystemExit(f"unexpected send summary: {summary!r}")
    sent, failed, loop = int(found.group(1)), int(found.group(2)), float(found.group(3))
    if failed or sent != facts["subscribers"] or received != sent:
        raise SystemExit(f"send incomplete: {summary}; the sink counted {received}")
    log(f"{summary}; wall {measured.seconds:.1f}s, RSS by quarter {measured.quarters} MiB "
        f"(cleared {cleared} ledger rows first)")  # fmt: skip
    return {"sent": sent, "seconds": measured.seconds, "rate": sent / measured.seconds,
            "loop_rate": sent / loop, "peak": measured.peak, "quarters": measured.quarters}  # fmt: skip


def smtp_source(sink: Sink, messages: int, length: int) -> dict[str, float]:
    """Time smtp-source sending `messages` of `length` payload bytes over POOL kept sessions."""
    args = [postfix_tool("smtp-source"), "-s", str(POOL), "-d", "-m", str(messages),
            "-l", str(length), "-f", "news@site.example", "-t", "reader@example.org",
            f"127.0.0.1:{sink.port}"]  # fmt: skip
    before = sink.received()
    measured = timed_child(args, dict(os.environ))
    received = sink.received() - before
    if received != messages:
        raise SystemExit(f"smtp-source: the sink counted {received} of {messages}")
    log(f"smtp-source: {messages} in {measured.seconds:.1f}s ({messages / measured.seconds:.0f}/s)")
    return {"seconds": measured.seconds, "rate": messages / measured.seconds}


def profile(sink: Sink, facts: dict[str, Any], count: int, dkim: Path | None) -> None:
    """Profile a send to the first `count` recipients in this process; print where time went."""
    import cProfile
    import dataclasses
    import pstats

    database, edition_id = Path(facts["database"]), str(facts["edition"])
    clear_ledger(database, edition_id)
    os.environ.update(environment(database, sink.port, dkim))
    from syndicate.delivery.configured import transport_from_settings
    from syndicate.delivery.dkim import DkimSigner
    from syndicate.delivery.ledger import send_edition
    from syndicate.delivery.send_lease import lease_name
    from syndicate.digests.editions import load_edition
    from syndicate.send.plan import plan_send
    from syndicate.settings import load_settings
    from syndicate.store import open_database
    from syndicate.store.leases import holder_name, release

    settings = load_settings()
    engine = open_database(settings.database.url)
    edition = load_edition(engine, edition_id)
    assert edition is not None
    signer = DkimSigner.from_settings(settings.mail.dkim)
    plan = plan_send(engine, settings, edition, transport_from_settings(settings.mail), signer)
    whole = plan.page

    def first(connection: Any, after: int, limit: int) -> Any:
        """The plan's pages, up to `count` recipients in all (pks run from 1 in these stores)."""
        return whole(connection, after, min(limit, count - after)) if after < count else []

    profiler = cProfile.Profile()
    holder = holder_name()  # as `syndicate digest send` does: the send takes the edition's lease
    started = time.perf_counter()
    # cProfile sees only this thread; the process's CPU also counts the ledger's writer thread,
    # and the sink's is what the same messages cost the other end (which shares the cores).
    cpu, sink_cpu = time.process_time(), process_cpu(sink.process.pid)
    profiler.enable()
    try:
        report = send_edition(engine, dataclasses.replace(plan, page=first), holder=holder)
    finally:
        profiler.disable()
        release(engine, lease_name(edition_id), holder)
    seconds = time.perf_counter() - started
    cpu, sink_cpu = time.process_time() - cpu, process_cpu(sink.process.pid) - sink_cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    sent = max(report.sent, 1)
    print(f"{report.summary()}; {seconds:.1f}s under cProfile, peak RSS {peak} MiB")
    print(f"CPU a message: {cpu * 1e6 / sent:.0f} µs in this process (all threads, under "
          f"cProfile), {sink_cpu * 1e6 / sent:.0f} µs in smtp-sink\n")  # fmt: skip
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(35)
    stats.sort_stats("tottime").print_stats(20)


def process_cpu(pid: int) -> float:
    """CPU seconds (user and system) a running process has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


Usage = tuple[float, float, dict[int, tuple[str, float]]]


def code_version() -> str:
    """The commit measured, and whether the working tree's src/ differs from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True, check=False).stdout.strip()  # fmt: skip
    changed = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=ROOT,
                             capture_output=True, text=True, check=False).stdout.split("\n")  # fmt: skip
    files = [line[3:].removeprefix("src/syndicate/") for line in changed if line.strip()]
    if not head:
        return "not a git checkout"
    return f"{head}" + (f" with uncommitted changes to {', '.join(files)}" if files else "")


def source_fingerprint() -> str:
    """A hash of every file under src/: whether the code changed while the benchmark ran."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src").rglob("*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def cpu_usage() -> Usage:
    """CPU seconds so far: the machine's busy time, this benchmark's, and each process's."""
    tick = os.sysconf("SC_CLK_TCK")
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = (sum(fields[:8]) - fields[3] - fields[4]) / tick  # all but idle and iowait
    own = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    mine = sum(usage.ru_utime + usage.ru_stime for usage in own)  # children once waited for
    processes = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                name, rest = entry.joinpath("stat").read_text().rsplit(")", 1)
            except OSError:
                continue  # ended while we looked
            stat = rest.split()  # utime and stime are the 14th and 15th fields
            used = (int(stat[11]) + int(stat[12])) / tick
            processes[int(entry.name)] = (name.split("(", 1)[1], used)
    return busy, mine, processes


def neighbours(start: Usage, seconds: float) -> str:
    """What else used the CPU since `start`: the machine's busy time that was not ours."""
    busy, mine, processes = cpu_usage()
    others = max(0.0, busy - start[0] - (mine - start[1]))
    by_name: dict[str, float] = {}
    for pid, (name, used) in processes.items():
        if pid in start[2]:  # running before we started: not one of ours
            by_name[name] = by_name.get(name, 0.0) + used - start[2][pid][1]
    busiest = sorted(by_name.items(), key=lambda item: -item[1])[:4]
    named = ", ".join(f"{name} {used:.0f} s" for name, used in busiest if used >= 1)
    return (
        f"other processes used {others:.0f} CPU-seconds during the {seconds:.0f} s of "
        f"measuring ({others / seconds:.2f} of {os.cpu_count()} cores)"
        + (f"; busiest that were running before it: {named}" if named else "")
    )


def main() -> None:
    """Prepare the stores, send, compare with smtp-source, and append the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=20_000, help="subscribers of the memory check")
    parser.add_argument("--sample", type=int, default=2_000, help="messages sized and timed")
    parser.add_argument(
        "--profile", type=int, metavar="N", help="only cProfile a send to N of the small store"
    )
    parser.add_argument("--dkim", action="store_true", help="sign in the --profile send")
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args()
    _held = hold_folder(OUT, "newsletter")  # the lock lasts while this name does: the whole run
    corpus = OUT / f"corpus-{ARTICLES}.jsonl"
    if not corpus.exists():
        with corpus.open("w") as handle:
            subprocess.run([*SYNDICATE, "demo-data", "--articles", str(ARTICLES), "--seed", "7",
                            "--now", CORPUS_MOMENT], stdout=handle, check=True, cwd=ROOT)  # fmt: skip
    version, fingerprint = code_version(), source_fingerprint()
    large = prepare(args.subscribers, corpus)
    small = prepare(args.small, corpus)
    key = dkim_key()

    sink = Sink()
    if args.profile:
        try:
            profile(sink, small, args.profile, key if args.dkim else None)
        finally:
            sink.close()
        return
    machine_before = cpu_usage()
    started = time.perf_counter()
    try:
        plain_env = environment(Path(large["database"]), sink.port)
        dkim_env = environment(Path(large["database"]), sink.port, key)
        plain = probe(plain_env, str(large["edition"]), args.sample)
        signed = probe(dkim_env, str(large["edition"]), args.sample)
        log(f"messages: {plain['size']:.0f} bytes, compose {plain['cpu_ms']:.2f} ms; "
            f"DKIM {signed['size']:.0f} bytes, {signed['cpu_ms']:.2f} ms")  # fmt: skip
        length = round(plain["size"]) - SINK_HEADERS
        reference = smtp_source(sink, args.subscribers, length)
        without = send(sink, plain_env, large)
        with_dkim = send(sink, dkim_env, large)
        few = send(sink, environment(Path(small["database"]), sink.port), small)
    finally:
        sink.close()
    shared = neighbours(machine_before, time.perf_counter() - started)
    if source_fingerprint() != fingerprint:
        version += " (**src/ changed while the benchmark ran**: the sends may not all have run the same code)"

    ratio = without["rate"] / reference["rate"]
    ratio_dkim = with_dkim["rate"] / reference["rate"]
    growth = without["peak"] - few["peak"]
    # Flat: the larger list's peak is near the smaller's, and memory does not climb during
    # either send (a cache emptied only when full can make two peaks alike while each climbs).
    climbs = [run["quarters"][-1] - run["quarters"][0] for run in (without, few)]
    steady = all(
        climb <= max(20, run["quarters"][0] // 10)
        for climb, run in zip(climbs, (without, few), strict=True)
    )
    flat = steady and without["peak"] <= few["peak"] * 1.15
    met = {
        "plain": "met" if without["rate"] >= 1000 else "**missed**",
        "dkim": "met" if with_dkim["rate"] >= 500 else "**missed**",
        "peak": "met" if without["peak"] * 2**20 < 300e6 else "**missed**",
        "flat": "met" if flat else "**missed**",
        "ratio": "met" if ratio >= 0.5 else "**missed**",
    }
    command = os.environ.get("BENCH_COMMAND") or " ".join(
        [".venv/bin/python bench/newsletter_bench.py", *sys.argv[1:]]
    )
    n = f"{args.subscribers:,}"
    prepared = (
        "reused from " + str(large["prepared"]) if large["reused"] else "prepared in this run"
    )
    row = f"""
## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: newsletters

- Machine: {machine()}
- Command: `{command}`
- Code: {version}
- Store: SQLite, {n} confirmed English daily subscribers with names, {large["followers"]:,} following 1 to 3 topics ({large["topic_sets"]} sets, {plain["variants"]:.0f} rendering variants of the edition); imported as {large["import"]} in {large["import_seconds"]} s ({prepared}); corpus `syndicate demo-data --articles {ARTICLES} --seed 7 --now {CORPUS_MOMENT}`; edition `{large["edition"]}`
- Messages: {plain["size"]:,.0f} bytes on average ({signed["size"]:,.0f} with DKIM), over the first {plain["sample"]:.0f} recipients, built by the send's own code path; compose CPU {plain["cpu_ms"]:.2f} ms a message ({signed["cpu_ms"]:.2f} ms with DKIM)
- Sink: Postfix `smtp-sink -c 127.0.0.1:PORT 1000`, one for the whole run; `syndicate digest send` with `pool_size = {POOL}`, default settings otherwise; each send starts from an empty ledger (its `delivery` rows for the edition are deleted first), the sink's own counter checked against `sent`

| measure | result | target |
| --- | --- | --- |
| send to {n}, no DKIM: sent / wall time of `syndicate digest send` (start-up included) | {without["rate"]:,.0f} msg/s ({without["sent"]:,.0f} in {without["seconds"]:.1f} s; {without["loop_rate"]:,.0f}/s in the send loop) | ≥ 1,000 msg/s: {met["plain"]} |
| send to {n}, DKIM rsa-sha256 2048, relaxed/relaxed | {with_dkim["rate"]:,.0f} msg/s ({with_dkim["sent"]:,.0f} in {with_dkim["seconds"]:.1f} s; {with_dkim["loop_rate"]:,.0f}/s in the send loop) | ≥ 500 msg/s: {met["dkim"]} |
| smtp-source, same sink: `-s {POOL} -d -m {args.subscribers} -l {length}` (the average size less the {SINK_HEADERS} bytes of headers it adds) | {reference["rate"]:,.0f} msg/s ({reference["seconds"]:.1f} s) | |
| ratio Syndicate / smtp-source, no DKIM | {ratio:.2f} | ≥ 0.5: {met["ratio"]} |
| ratio Syndicate with DKIM / smtp-source | {ratio_dkim:.2f} | |
| peak memory, send to {n} (process tree RSS, no DKIM / DKIM) | {without["peak"]} MiB / {with_dkim["peak"]} MiB | < 300 MB (286 MiB): {met["peak"]} |
| RSS of the send to {n} (no DKIM), highest in each quarter of its run | {" / ".join(f"{q}" for q in without["quarters"])} MiB | |
| peak memory, send to {args.small:,} (smaller store, same edition) | {few["peak"]} MiB ({few["rate"]:,.0f} msg/s) | |
| memory from {args.small:,} to {n} subscribers; climb during the sends to {n} / {args.small:,} (first quarter to last) | {growth:+d} MiB ({growth / few["peak"]:+.0%}); {climbs[0]:+d} / {climbs[1]:+d} MiB | flat (≤ +15 % between lists, ≤ +10 % or 20 MiB within a send): {met["flat"]} |

Shared the machine: {shared}.
"""
    print(row)
    if args.no_record:
        return
    record(row)


def _stop(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit, so the sink and any send are stopped on the way out."""
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _stop)
    main()
