"""The service: `syndicate run`'s scheduler, jobs, and their status."""
