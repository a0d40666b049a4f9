"""Ingest-format lines, one record each, for tests that feed the command line or the inbox."""

from __future__ import annotations

import json
from datetime import datetime


def article_record(identifier: str, title: str, published: datetime, **fields: object) -> str:
    """One ingest-format article line."""
    record = {
        "type": "article",
        "id": identifier,
        "url": f"https://site.example/en/news/{identifier}",
        "title": title,
        "summary": "Dropped into the inbox by a test.",
        "body_html": "<p>Body.</p>",
        "published_at": published.isoformat(),
        "status": "published",
        "language": "en",
        "section": "news",
        "tags": ["Inbox Test"],
        **fields,
    }
    return json.dumps(record, ensure_ascii=False) + "\n"


def pick_record(article_id: str, position: int, picked: datetime) -> str:
    """One ingest-format line putting an article among the Editor's Choice from `picked` on."""
    record = {
        "type": "pick",
        "article_id": article_id,
        "position": position,
        "picked_at": picked.isoformat(),
        "unpicked_at": None,
    }
    return json.dumps(record) + "\n"
