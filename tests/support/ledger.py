"""The delivery ledger as tests read it: each address's status and detail for an edition."""

from __future__ import annotations

from sqlalchemy import Engine, select

from syndicate.store.schema import delivery, subscriber


def ledger(engine: Engine, edition_id: str) -> dict[str, tuple[str, str]]:
    """Each subscriber's address and the ledger's (status, detail) for the edition."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(subscriber.c.email, delivery.c.status, delivery.c.detail)
            .join(delivery, delivery.c.subscriber_pk == subscriber.c.pk)
            .where(delivery.c.edition_id == edition_id)
        ).all()
    return {email: (status, detail) for email, status, detail in rows}
