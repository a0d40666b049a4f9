"""Feeds: which feeds exist, what they hold, how they render, and how they reach disk."""
