"""A send in batches: an edition's audience cut into subscriber id ranges, and one range sent.

When workers share a send (syndicate.queue), each batch is a range of subscriber ids, first to
last inclusive, holding at most `[queue] send_batch` of the edition's recipients. The ranges
are cut from the whole audience in id order, so asking again cuts the same ones (the queue
then collapses a range that waits already); a range whose recipients the ledger has all is
left out. A batch holds a lease of its own, so two workers never send one range at once, even
when a worker that seemed dead comes back; the ledger's bound holds per batch: at most one
unrecorded message per connection of the worker that sends it.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from sqlalchemy import Connection, Engine, select

from syndicate.delivery.configured import transport_from_settings
from syndicate.delivery.dkim import DkimSigner
from syndicate.delivery.ledger import Recipient, SendPlan, SendReport, Stop, delivered, send_edition
from syndicate.delivery.send_lease import acquire_send_lease, batch_lease_name
from syndicate.digests.model import Edition
from syndicate.send.plan import EditionComposer, count_recipients, edition_composer, plan_send
from syndicate.settings import Settings
from syndicate.store.database import reading
from syndicate.store.leases import holder_name, release
from syndicate.store.schema import subscriber
from syndicate.subscribers import audience

log = logging.getLogger(__name__)

ID_PAGE = 10_000  # subscriber ids read a query while the ranges are cut


@dataclass(frozen=True, order=True, slots=True)
class Batch:
    """Subscriber ids `first` to `last` (inclusive): `size` recipients, `pending` not done yet."""

    first: int
    last: int
    size: int = 0
    pending: int = 0

    def __str__(self) -> str:
        """`first-last`, as people and logs name a batch."""
        return f"{self.first}-{self.last}"


@dataclass(frozen=True, slots=True)
class Audience:
    """An edition's recipients when its send was asked for: still to send, done, suppressed."""

    todo: int
    done: int
    suppressed: int


def split_batches(recipients: Iterable[tuple[int, bool]], size: int) -> Iterator[Batch]:
    """Cut (id, done) pairs, in ascending id order, into batches of at most `size` recipients."""
    first = last = count = pending = 0
    for pk, done in recipients:
        if count == 0:
            first = pk
        last, count, pending = pk, count + 1, pending + (not done)
        if count == size:
            yield Batch(first, last, count, pending)
            count = pending = 0
    if count:
        yield Batch(first, last, count, pending)


def audience_batches(engine: Engine, edition: Edition, size: int) -> list[Batch]:
    """The edition's audience cut into batches of `size`, those with someone still to send."""
    return [batch for batch in split_batches(_audience_ids(engine, edition), size) if batch.pending]


def _audience_ids(engine: Engine, edition: Edition) -> Iterator[tuple[int, bool]]:
    """Each recipient's id, in order, and whether the ledger has them done; a page at a time."""
    after = 0
    with reading(engine).connect() as connection:
        receiving = audience.receiving(connection, edition.kind, edition.language)
        done = delivered(edition.id, subscriber.c.pk).label("done")
        while True:
            rows = connection.execute(
                select(subscriber.c.pk, done)
                .where(receiving, subscriber.c.pk > after)
                .order_by(subscriber.c.pk)
                .limit(ID_PAGE)
            ).all()
            if not rows:
                return
            yield from ((pk, bool(finished)) for pk, finished in rows)
            after = rows[-1][0]


def count_audience(engine: Engine, edition: Edition) -> Audience:
    """How many of the edition's recipients are still to send, done, and suppressed."""
    with reading(engine).connect() as connection:
        todo, done = count_recipients(edition, connection)
        suppressed = audience.count_suppressed(connection, edition.kind, edition.language)
    return Audience(todo, done, suppressed)


def check_send(engine: Engine, settings: Settings, edition: Edition) -> None:
    """Raise now what would fail every batch alike: the DKIM key, what every message shares."""
    edition_composer(engine, settings, edition, DkimSigner.from_settings(settings.mail.dkim))


class Composers:
    """A worker's composers, one an edition, kept across its batches: variants compile once.

    Compiling an edition's variants (MJML for each set of topics) costs about as much as
    composing a thousand messages; a batch of a thousand would pay it again each time.
    """

    def __init__(self, keep: int = 4) -> None:
        """Keep the composers of the `keep` editions used last."""
        self.keep = keep
        self._kept: OrderedDict[str, EditionComposer] = OrderedDict()
        self._lock = threading.Lock()  # jobs run in threads

    def of(self, engine: Engine, settings: Settings, edition: Edition) -> EditionComposer:
        """The composer of `edition`, made (and checked) the first time it is asked for."""
        with self._lock:
            found = self._kept.pop(edition.id, None)
            if found is None:
                signer = DkimSigner.from_settings(settings.mail.dkim)
                found = edition_composer(engine, settings, edition, signer)
            self._kept[edition.id] = found
            while len(self._kept) > self.keep:
                self._kept.popitem(last=False)
            return found


def send_batch(
    engine: Engine,
    settings: Settings,
    edition: Edition,
    batch: Batch,
    *,
    stop: Stop | None,
    composers: Composers | None = None,
) -> SendReport:
    """Send `edition` to the recipients of `batch` the ledger lacks, holding the batch's lease.

    Raises SendInProgress at once when another holder sends this batch. Once `stop` is set the
    messages in flight are finished and recorded, and the report says `stopped`. `composers`
    keeps the edition's composer for the next batch.
    """
    holder = holder_name()
    lease = batch_lease_name(edition.id, batch.first)
    acquire_send_lease(engine, edition.id, holder, lease)
    try:
        transport = transport_from_settings(settings.mail, engine)
        composer = (composers or Composers()).of(engine, settings, edition)
        plan = _within(plan_send(engine, settings, edition, transport, None, composer), batch)
        return send_edition(engine, plan, holder=holder, stop=stop, lease=lease)
    finally:
        release(engine, lease, holder)


def _within(plan: SendPlan, batch: Batch) -> SendPlan:
    """`plan` narrowed to the recipients of `batch`; its suppressed are counted by the asker."""
    page = plan.page

    def batch_page(connection: Connection, after: int, limit: int) -> list[Recipient]:
        found = page(connection, max(after, batch.first - 1), limit)
        return [recipient for recipient in found if recipient.pk <= batch.last]

    return replace(plan, page=batch_page, count=None, suppressed=0)
