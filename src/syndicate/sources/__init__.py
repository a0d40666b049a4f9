"""Sources: where articles come from (the inbox folder, a WordPress site), polled on a schedule.

`polling.poll_sources` is the one entry point: the scheduler calls it every
`[schedule] poll_seconds` from a worker thread and rebuilds the feeds when the report says
something `changed`. ingest is the one way in for every source and `syndicate ingest`:
ingest_format parses and checks a record, limits holds the [ingest] limits, ingest streams a
batch into the store. This package imports nothing itself, so `syndicate ingest` loads neither
the HTTP client nor the metrics it does not use.
May import the store, the feeds' keys and catalog and the leaves; never the web, the
schedule, sending or the command line.
"""
