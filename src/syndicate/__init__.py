"""Syndicate: feeds and digest newsletters for a multilingual news site."""

__version__ = "0.1.0"
