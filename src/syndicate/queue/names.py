"""The names jobs are deferred, run and reported by: one place, so every side spells them alike."""

FEED_BUILD = "feeds.build"
# One shard of a feed build: the feeds of some keys (args: build id, shard, keys, clock, mode).
FEED_SHARD = "feeds.shard"
# One batch of a send: an edition to the subscribers of an id range (args: edition_id, first, last).
SEND_BATCH = "send.batch"
# The queue's own upkeep: deleting old finished jobs (workers hand back dead ones' jobs
# themselves, queue.stalled).
PRUNE = "queue.prune"
