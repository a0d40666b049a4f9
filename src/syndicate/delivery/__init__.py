"""Delivery: messages, DKIM, transports, the send ledger and its recorder, the send lease.

Knows nothing of editions or subscribers: `syndicate.send` wires those in. May import the
store, the settings and the leaves; never the digests, subscribers, the web, the schedule or
the command line.
"""
