"""The work queue: procrastinate on a PostgreSQL store, so any number of workers share the work.

engine (the procrastinate App for a store's URL, and whether a store has a queue at all), names
(every job's name), jobs
(the job registry: what a worker can run and the names and locks they are deferred by),
feed_jobs (a feed build, shared out in shards by feed key when it is large), requests (asking
for work: deferred as a job on PostgreSQL, run in this process on SQLite, as before), a send in
batches (send_jobs: the batch job; send_requests: asking for a send; send_watch: its progress
and end, from the ledger and the queue), worker (`syndicate worker`'s loop: structured logs, a
graceful stop on SIGTERM), and what operators see of it, read-only: cluster (jobs, workers,
stalled and failed jobs), send_progress (each running send's batches and ledger) and
cluster_metrics (at /metrics).

Its layer sits above the parts its jobs run (feeds, sends) and below web and
service, which ask for work; it never imports them. Procrastinate's schema is made by the
store's migrations, like the rest of the store.
"""

from syndicate.queue.engine import QueueUnavailable, queue_app, uses_queue
from syndicate.queue.jobs import Runtime, register_jobs
from syndicate.queue.names import FEED_BUILD, FEED_SHARD, SEND_BATCH
from syndicate.queue.requests import BuildRequest, request_feed_build
from syndicate.queue.send_requests import SendOutcome, request_send
from syndicate.queue.send_watch import QueuedSend
from syndicate.queue.worker import run_worker

__all__ = [
    "FEED_BUILD",
    "FEED_SHARD",
    "SEND_BATCH",
    "BuildRequest",
    "QueueUnavailable",
    "QueuedSend",
    "Runtime",
    "SendOutcome",
    "queue_app",
    "register_jobs",
    "request_feed_build",
    "request_send",
    "run_worker",
    "uses_queue",
]
