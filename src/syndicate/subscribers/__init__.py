"""Subscribers: addresses, signed links, the subscriber registry, CSV import/export, web pages."""
