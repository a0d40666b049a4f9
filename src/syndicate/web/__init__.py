"""The web: the ASGI app (feeds, pages, archive, subscriptions, metrics) and its server.

May import sending (the confirmation mail), the parts, the feeds, the store, the settings and
the leaves; only the service and the command line import it.
"""
