"""Subscribers, the domain: addresses, signed tokens and links, the registry, the audience.

Also the topics a subscriber may follow, the throttle on subscribing, and CSV import/export.
No HTTP here: the subscription pages that drive this are `syndicate.web.subscriptions`. May
import the store, the settings and the leaves; never the web, Starlette, the schedule or the
command line.
"""
