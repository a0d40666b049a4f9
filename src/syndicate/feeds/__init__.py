"""Feeds: which feeds exist, what they hold, how they render, and how they reach disk.

Also which feeds a store change touches (changes) and telling the WebSub hubs (websub).
May import the store, workers (a large build's processes), the settings and the leaves; never
the sources, digests, subscribers, delivery, sending, the web, the schedule or the command line.
"""
