"""Webhook benchmark: signed Mailgun events a second on the built-in server, against its /healthz.

Run it with `make bench` (everything), `bench/run webhooks` (this one alone) or
`.venv/bin/python bench/webhooks_bench.py [--subscribers N] [--seconds S] [--no-record]`. It
needs Debian's `wrk` (bench/run installs it when missing).

In one run: a fresh SQLite store with `--subscribers` confirmed subscribers, `syndicate serve`
(one uvicorn process) with a Mailgun signing key set, then `wrk` for `--seconds` on /healthz
(the reference: what one HTTP request costs on that server) and for `--seconds` posting
Mailgun events, each its own request signed as Mailgun signs them (a mix of deliveries,
permanent and temporary failures and complaints, each a fresh event id and token). Every
event must be answered 200 and stored. Events a second, the ratio to /healthz and the
server's memory are appended to bench/RESULTS.md with the machine, its load, the command,
the code version and the date.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from feeds_bench import free_port, machine, record, tree_rss_kib, wait_for
from newsletter_bench import code_version, cpu_usage, neighbours, source_fingerprint

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "webhooks"
RESULTS = ROOT / "bench" / "RESULTS.md"
SYNDICATE = [sys.executable, "-m", "syndicate"]
SIGNING_KEY = "key-bench-mailgun-signing-key"
# Event kinds in the proportions a newsletter's feedback comes back in, roughly.
MIX = (
    [("delivered", "")] * 80
    + [("failed", "temporary")] * 10
    + [("failed", "permanent")] * 8
    + [("complained", "")] * 2
)
THREADS, CONNECTIONS = 2, 32
# wrk posts the bodies of a file in turn, one line each, every thread its share of the lines.
POST_SCRIPT = """
local bodies, position = {}, 0
local thread_count, next_id = 0, 0
function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  thread_count = thread_count + 1
end
function init(args)
  local line_number = 0
  for line in io.lines(args[1]) do
    if line_number % tonumber(args[2]) == id then bodies[#bodies + 1] = line end
    line_number = line_number + 1
  end
end
function request()
  position = position + 1
  if position > #bodies then position = 1 end
  return wrk.format("POST", "/webhooks/mailgun", {["Content-Type"] = "application/json"},
                    bodies[position])
end
"""


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def environment(folder: Path, port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYNDICATE_")}
    env.update({
        "SYNDICATE_DATABASE__URL": f"sqlite:///{folder / 'bench.db'}",
        "SYNDICATE_FEEDS__DIR": str(folder / "feeds"),
        "SYNDICATE_WEB__PORT": str(port),
        "SYNDICATE_WEB__PUBLIC_URL": f"http://127.0.0.1:{port}/",
        "SYNDICATE_SECURITY__SECRET_KEY": "a secret key for the webhook benchmark only",
        "SYNDICATE_BOUNCES__WEBHOOKS__MAILGUN_SIGNING_KEY": SIGNING_KEY,
    })  # fmt: skip
    return env


def prepare(folder: Path, env: dict[str, str], subscribers: int) -> None:
    """A store holding `subscribers` confirmed subscribers, and a (nearly empty) feed build."""
    csv = folder / "subscribers.csv"
    with csv.open("w") as handle:
        handle.write("email,name,language,digests,topics\n")
        for number in range(subscribers):
            handle.write(f"reader{number}@example.org,Reader {number},en,daily,\n")
    for command in (["subscribers", "import", str(csv), "--confirmed"], ["build"]):
        subprocess.run([*SYNDICATE, *command], env=env, cwd=folder, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


def signed_events(path: Path, count: int, subscribers: int, first: int = 0) -> None:
    """Write `count` signed Mailgun webhook bodies to `path`, one a line, signed now."""
    chooser = random.Random(7)
    timestamp = str(int(time.time()))
    with path.open("w") as handle:
        for number in range(first, first + count):
            event, severity = chooser.choice(MIX)
            token = f"{number:050d}"
            signature = hmac.new(SIGNING_KEY.encode(), f"{timestamp}{token}".encode(),
                                 hashlib.sha256).hexdigest()  # fmt: skip
            data = {
                "id": f"bench-{number}", "event": event, "timestamp": time.time(),
                "recipient": f"reader{chooser.randrange(subscribers)}@example.org",
                "delivery-status": {"code": 250 if event == "delivered" else 550,
                                    "message": "5.1.1 no such user" if severity else "OK"},
                "message": {"headers": {"message-id": f"bench-{number}@news.example"}},
            }  # fmt: skip
            if severity:
                data["severity"] = severity
            body = {"signature": {"timestamp": timestamp, "token": token, "signature": signature},
                    "event-data": data}  # fmt: skip
            handle.write(json.dumps(body, separators=(",", ":")) + "\n")


def wrk(url: str, seconds: int, script: Path | None = None, *args: str) -> tuple[float, int]:
    """Requests a second and requests made, for `seconds` of wrk on `url`; any non-2xx fails."""
    # A generous timeout: a request wrk gave up on would be stored yet not counted.
    command = ["wrk", f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "30s"]
    if script is not None:
        command += ["-s", str(script), url, *args]
    else:
        command.append(url)
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    made = re.search(r"(\d+) requests in", result.stdout)
    if (
        rate is None
        or made is None
        or "Non-2xx" in result.stdout
        or "Socket errors" in result.stdout
    ):
        raise SystemExit(f"wrk failed or saw errors:\n{result.stdout}")
    return float(rate.group(1)), int(made.group(1))


def stored_events(database: Path) -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute("SELECT count(*) FROM feedback_event").fetchone()[0])


def measure(folder: Path, env: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    """Serve, then wrk on /healthz and on the Mailgun webhook; the rates and the server's memory."""
    port = int(env["SYNDICATE_WEB__PORT"])
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*SYNDICATE, "serve"], env=env, cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(port)
        with urllib.request.urlopen(f"{base}/healthz") as answer:  # noqa: S310 - our own http URL
            assert answer.status == 200, "the feeds were not built"
        bodies, script = folder / "events.jsonl", folder / "post.lua"
        script.write_text(POST_SCRIPT)
        # More bodies than the run can post: every request is a new event, none a replay.
        signed_events(bodies, args.events, args.subscribers)
        healthz_rate, _ = wrk(f"{base}/healthz", args.seconds)
        log(f"/healthz: {healthz_rate:,.0f} requests/s")
        before = stored_events(folder / "bench.db")
        rate, made = wrk(base, args.seconds, script, str(bodies), str(THREADS))
        stored = stored_events(folder / "bench.db") - before
        if made > args.events:
            raise SystemExit(f"wrk posted {made:,} events, more than the {args.events:,} "
                             "written: raise --events")  # fmt: skip
        # wrk counts the answers it read; up to one request a connection was still in flight
        # when it stopped, and is stored all the same.
        if not made <= stored <= made + CONNECTIONS:
            raise SystemExit(f"{made:,} events answered 200 but {stored:,} stored")
        log(f"/webhooks/mailgun: {rate:,.0f} events/s ({made:,} stored)")
        return {"healthz": healthz_rate, "events": rate, "made": made,
                "rss": tree_rss_kib(server.pid) / 1024}  # fmt: skip
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def main() -> None:
    """Measure the webhook against /healthz and append the results."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument("--events", type=int, default=40_000, help="signed events written")
    parser.add_argument("--no-record", action="store_true", help="leave RESULTS.md alone")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench: wrk is missing: sudo apt-get install wrk")
    folder = OUT / "run"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = environment(folder, free_port())
    prepare(folder, env, args.subscribers)
    version, fingerprint = code_version(), source_fingerprint()
    machine_before = cpu_usage()
    started = time.perf_counter()
    result = measure(folder, env, args)
    shared = neighbours(machine_before, time.perf_counter() - started)
    if source_fingerprint() != fingerprint:
        version += " (**src/ changed while the benchmark ran**)"
    command = os.environ.get("BENCH_COMMAND") or " ".join(
        [".venv/bin/python bench/webhooks_bench.py", *sys.argv[1:]]
    )
    row = f"""
## {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: webhooks

- Machine: {machine()}
- Command: `{command}`
- Code: {version}
- Store: fresh SQLite, {args.subscribers:,} confirmed subscribers; `syndicate serve`, one uvicorn process
- Events: Mailgun webhooks, one event a request, each signed (HMAC-SHA256) with a fresh token and event id: 80 % delivered, 10 % temporary failures, 8 % permanent, 2 % complaints

| measure | result |
| --- | --- |
| `/healthz` (the reference: one HTTP request on the same server) | {result["healthz"]:,.0f} requests/s |
| `/webhooks/mailgun`: events checked, recorded and answered 200 | {result["events"]:,.0f} events/s ({result["made"]:,} in {args.seconds} s, every one stored) |
| ratio webhook events / `/healthz` requests | {result["events"] / result["healthz"]:.2f} |
| server memory after the run (RSS) | {result["rss"]:.0f} MiB |

wrk: `wrk -t{THREADS} -c{CONNECTIONS} -d{args.seconds}s --timeout 30s` on 127.0.0.1, each run. Shared the machine: {shared}.
"""
    print(row)
    if args.no_record:
        return
    record(row)


if __name__ == "__main__":
    main()
