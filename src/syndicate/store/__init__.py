"""The store: articles, tags, topics, picks and views in SQL (SQLite or PostgreSQL)."""

from syndicate.store.database import open_database

__all__ = ["open_database"]
