"""The command line, the composition root: settings become each part's config here.

commands holds the `syndicate` group and its feed, service and ingest commands; newsletters the
`digest` and `subscribers` groups; worker `syndicate worker` (the queue's jobs); context what every command shares (`--config`,
`--log-level`, the settings, the store, and the worker processes builds and sends may start).
May import every room; nothing imports it.
"""

from syndicate.cli.commands import main

__all__ = ["main"]
