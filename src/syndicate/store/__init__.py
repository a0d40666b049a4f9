"""The store: articles, tags, topics, picks and views in SQL (SQLite or PostgreSQL).

Imports only the leaves and the settings: writes report what changed as values
(store.changes), and the feeds turn those into feed keys.
"""

from syndicate.store.database import open_database

__all__ = ["open_database"]
