"""The service: `syndicate run`'s scheduler, jobs, and their status.

Composes the long-running work (the schedule, the web server, polling the sources, sends), so
it may import every room but the command line; only the command line imports it.
"""
