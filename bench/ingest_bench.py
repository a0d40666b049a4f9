"""Ingest benchmark: `syndicate ingest` of the demo corpus, against `sqlite-utils insert --nl`.

Run it with `make bench` (everything), `bench/run ingest` (this one alone) or
`.venv/bin/python bench/ingest_bench.py [--articles N] [--small N] [--no-record]`. It needs
`sqlite-utils` in the virtualenv (bench/run installs it from PyPI when missing).

In one run, each into a fresh SQLite file: `syndicate ingest` of the whole corpus (topics,
articles, picks and hourly views: `syndicate demo-data --articles N --tags 5000 --seed 7`),
then of its topics and articles alone, then `sqlite-utils insert --nl` of the same articles
into one table (the reference: what the store takes at its own speed), then `syndicate ingest`
of a corpus of `--small` articles (memory must not grow with the input). Records a second,
the ratio to sqlite-utils on the same articles, and peak memory are appended to
bench/RESULTS.md with the machine, its load, the command, the code version and the date.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from feeds_bench import CORPUS_MOMENT, hold_folder, machine, record
from newsletter_bench import code_version, cpu_usage, neighbours, source_fingerprint, timed_child

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "ingest"
RESULTS = ROOT / "bench" / "RESULTS.md"
SYNDICATE = [sys.executable, "-m", "syndicate"]
SQLITE_UTILS = str(Path(sys.executable).with_name("sqlite-utils"))
TAGS = 5_000
TARGET = 20_000  # records a second, on the whole corpus


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def corpus(articles: int) -> Path:
    """The demo corpus of `articles` articles, written once and reused."""
    path = OUT / f"corpus-{articles}-{TAGS}.jsonl"
    if not path.exists():
        log(f"generating {articles:,} articles with {TAGS:,} tags")
        partial = path.with_suffix(".partial")
        with partial.open("w") as handle:
            command = [*SYNDICATE, "demo-data", "--articles", str(articles), "--tags", str(TAGS),
                     "--seed", "7", "--now", CORPUS_MOMENT]  # fmt: skip
            subprocess.run(command, stdout=handle, check=True, cwd=ROOT)
        partial.rename(path)
    return path


def split(path: Path) -> tuple[Path, Path, dict[str, int]]:
    """The corpus's topics and articles, its articles alone, and its records of each type.

    Syndicate gets the topics too (articles name them); sqlite-utils gets the articles alone.
    """
    counts: dict[str, int] = {}
    with_topics = path.with_name(path.stem + ".articles-and-topics.jsonl")
    articles = path.with_name(path.stem + ".articles.jsonl")
    if with_topics.exists() and articles.exists():
        with path.open("rb") as handle:
            for line in handle:
                kind = json.loads(line)["type"]
                counts[kind] = counts.get(kind, 0) + 1
        return with_topics, articles, counts
    with path.open("rb") as source, with_topics.open("wb") as both, articles.open("wb") as alone:
        for line in source:
            kind = json.loads(line)["type"]
            counts[kind] = counts.get(kind, 0) + 1
            if kind in ("topic", "article"):
                both.write(line)
            if kind == "article":
                alone.write(line)
    return with_topics, articles, counts


def fresh(name: str) -> Path:
    """A path for a new SQLite database (any earlier one and its log removed)."""
    database = OUT / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    return database


def environment(database: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYNDICATE_")}
    env["SYNDICATE_DATABASE__URL"] = f"sqlite:///{database}"
    return env


def ingest(path: Path, records: int, name: str) -> dict[str, Any]:
    """Time `syndicate ingest` of `path` into a fresh store."""
    database = fresh(name)
    run = timed_child([*SYNDICATE, "ingest", str(path)], environment(database))
    accepted = int(run.stdout.split()[0])
    if accepted != records:
        raise SystemExit(f"ingest of {path.name} accepted {accepted} of {records}: {run.stdout}")
    rate = records / run.seconds
    log(f"syndicate ingest {path.name}: {records:,} in {run.seconds:.1f} s = {rate:,.0f}/s, "
        f"peak {run.peak} MiB ({'/'.join(map(str, run.quarters))})")  # fmt: skip
    return {"seconds": run.seconds, "rate": rate, "peak": run.peak, "quarters": run.quarters,
            "megabytes": database.stat().st_size / 1e6}  # fmt: skip


def reference(articles: Path, count: int) -> dict[str, Any]:
    """Time `sqlite-utils insert --nl` of the articles into one table of a fresh file."""
    database = fresh("sqlite-utils")
    run = timed_child([SQLITE_UTILS, "insert", str(database), "article", str(articles), "--nl"],
                      dict(os.environ))  # fmt: skip
    rate = count / run.seconds
    log(f"sqlite-utils insert --nl: {count:,} in {run.seconds:.1f} s = {rate:,.0f}/s, "
        f"peak {run.peak} MiB")  # fmt: skip
    return {"seconds": run.seconds, "rate": rate, "peak": run.peak,
            "megabytes": database.stat().st_size / 1e6}  # fmt: skip


def main() -> None:
    """Ingest, compare with sqlite-utils, check memory, and append the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=20_000, help="articles of the memory check")
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args()
    if not Path(SQLITE_UTILS).exists():
        raise SystemExit(
            "bench: sqlite-utils is missing: .venv/bin/python -m pip install sqlite-utils"
        )
    _held = hold_folder(OUT, "ingest")  # the lock lasts while this name does: the whole run
    large, small = corpus(args.articles), corpus(args.small)
    with_topics, articles, counts = split(large)
    records, small_records = sum(counts.values()), sum(split(small)[2].values())
    version, fingerprint = code_version(), source_fingerprint()

    machine_before = cpu_usage()
    started = time.perf_counter()
    whole = ingest(large, records, "whole")
    same = ingest(with_topics, counts["article"] + counts["topic"], "articles")
    theirs = reference(articles, counts["article"])
    few = ingest(small, small_records, "small")
    shared = neighbours(machine_before, time.perf_counter() - started)
    if source_fingerprint() != fingerprint:
        version += " (**src/ changed while the benchmark ran**)"

    ratio = same["rate"] / theirs["rate"]
    growth = whole["peak"] - few["peak"]
    climbs = [run["quarters"][-1] - run["quarters"][0] for run in (whole, few)]
    # Flat: the larger input's peak is near the smaller's, and memory does not climb through
    # the larger run. (The smaller run ends while SQLite's page cache is still filling.)
    flat = whole["peak"] <= few["peak"] * 1.15 and climbs[0] <= max(20, whole["quarters"][0] // 10)
    met = {
        "rate": "met" if whole["rate"] >= TARGET else "**missed**",
        "flat": "met" if flat else "**missed**",
    }
    command = os.environ.get("BENCH_COMMAND") or " ".join(
        [".venv/bin/python bench/ingest_bench.py", *sys.argv[1:]]
    )
    plural = {"topic": "topics", "article": "articles", "pick": "picks", "views": "views records"}
    kinds = ", ".join(f"{counts[kind]:,} {plural[kind]}" for kind in plural if kind in counts)
    row = f"""
## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: ingest

- Machine: {machine()}
- Command: `{command}`
- Code: {version}
- Corpus: `syndicate demo-data --articles {args.articles} --tags {TAGS} --seed 7 --now {CORPUS_MOMENT}`: {records:,} records ({kinds}), {large.stat().st_size / 1e6:,.0f} MB
- Each run writes a fresh SQLite file (WAL, synchronous NORMAL, as `syndicate ingest` opens it); `sqlite-utils {_version()}` with its defaults (one table, no primary key or index)

| measure | result | target |
| --- | --- | --- |
| `syndicate ingest`, whole corpus: records / wall time (start-up included) | {whole["rate"]:,.0f} records/s ({records:,} in {whole["seconds"]:.1f} s; store {whole["megabytes"]:,.0f} MB) | ≥ {TARGET:,} records/s: {met["rate"]} |
| `syndicate ingest`, its topics and articles alone | {same["rate"]:,.0f} records/s ({counts["article"]:,} articles in {same["seconds"]:.1f} s) | |
| `sqlite-utils insert --nl`, the same articles into one table | {theirs["rate"]:,.0f} records/s ({theirs["seconds"]:.1f} s; {theirs["megabytes"]:,.0f} MB) | |
| ratio Syndicate / sqlite-utils on the same articles | {ratio:.2f} | |
| peak memory, whole corpus (process RSS; highest in each quarter of the run) | {whole["peak"]} MiB ({" / ".join(map(str, whole["quarters"]))}) | |
| peak memory, corpus of {args.small:,} articles ({small_records:,} records) | {few["peak"]} MiB ({few["rate"]:,.0f} records/s) | |
| memory from {small_records:,} to {records:,} records; climb during each run (first quarter to last) | {growth:+d} MiB ({growth / few["peak"]:+.0%}); {climbs[0]:+d} / {climbs[1]:+d} MiB | flat (≤ +15 % between inputs, ≤ +10 % or 20 MiB through the larger run): {met["flat"]} |

Shared the machine: {shared}.
"""
    print(row)
    if args.no_record:
        return
    record(row)


def _version() -> str:
    result = subprocess.run(
        [SQLITE_UTILS, "--version"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip().rsplit(" ", 1)[-1]


if __name__ == "__main__":
    main()
