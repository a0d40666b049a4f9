"""Planning an edition's send: its subscribers, their links, the messages and the ledger.

This is where the three newsletter parts meet: an edition's rendering (digests), each
subscriber's links (subscribers), and message building, signing and the ledger (delivery).
Each part stays ignorant of the others; `plan_send` wires one edition's send.
"""

from __future__ import annotations

import logging
from email.utils import parseaddr
from functools import partial

from sqlalchemy import Connection, Engine, func, select

from syndicate.delivery.dkim import DkimSigner
from syndicate.delivery.ledger import Outgoing, SendPlan, delivered
from syndicate.delivery.message import (
    BodyTemplate,
    Letter,
    build_message,
    make_message_id,
)
from syndicate.delivery.recorder import DeliveryStatus
from syndicate.delivery.transports import (
    PermanentFailure,
    SessionFailure,
    TransientFailure,
    Transport,
)
from syndicate.digests.model import Edition
from syndicate.digests.render import CompiledEdition, EditionRenderer
from syndicate.domain.periods import DIGEST_KINDS
from syndicate.i18n.catalogs import gettext
from syndicate.send.envelopes import Envelopes, envelopes_for
from syndicate.send.pause import bounce_pause, check_every
from syndicate.settings import MailSettings, Settings
from syndicate.store.database import reading
from syndicate.store.schema import subscriber
from syndicate.subscribers import audience, registry
from syndicate.subscribers.links import SubscriptionLinks
from syndicate.subscribers.tokens import Tokens, secret_key

log = logging.getLogger(__name__)


def subscription_links(engine: Engine, settings: Settings) -> SubscriptionLinks:
    """Link minting with the configured (or stored) secret key."""
    return SubscriptionLinks(Tokens(signing_key(engine, settings)), str(settings.web.public_url))


def signing_key(engine: Engine, settings: Settings) -> str:
    """The secret key that signs links and VERP tokens: configured, or kept in the store."""
    return secret_key(engine, settings.security.secret_key.get_secret_value())


def sender_domain(from_address: str) -> str:
    """The domain of the From address: it names the lists and the message ids."""
    return parseaddr(from_address)[1].rpartition("@")[2].lower()


def feedback_id(mail: MailSettings, kind: str, language: str) -> str:
    """[mail] feedback_id for one kind of mail in one language ("" when unset)."""
    return mail.feedback_id.replace("{kind}", kind).replace("{language}", language)


def plan_send(
    engine: Engine,
    settings: Settings,
    edition: Edition,
    transport: Transport,
    signer: DkimSigner | None,
    composer: EditionComposer | None = None,
) -> SendPlan:
    """Everything the ledger needs to send `edition`: recipients, composing, sending.

    `composer`, one made before for this edition (and checked), keeps the variants it has
    compiled; without, one is made with `signer`.
    """
    if composer is None:
        composer = edition_composer(engine, settings, edition, signer)
    with reading(engine).connect() as connection:
        suppressed = audience.count_suppressed(connection, edition.kind, edition.language)
    mail = settings.mail
    return SendPlan(
        edition_id=edition.id,
        page=partial(_recipients_page, edition),
        count=partial(count_recipients, edition),
        compose=composer.compose,  # type: ignore[arg-type]  # the ledger hands back what page gave
        send=lambda outgoing, before_delivery: transport.send(
            outgoing.envelope_from,
            outgoing.recipient,
            outgoing.data,
            before_delivery=before_delivery,
        ),
        classify=classify_failure,
        on_bounce=_suppress_bounced,
        concurrency=mail.smtp.pool_size if mail.transport == "smtp" else 1,
        suppressed=suppressed,
        finish=transport.close,
        suppressed_among=audience.suppressed_among,
        pause=bounce_pause(settings.bounces, edition.id),
        pause_every=check_every(settings.bounces),
    )


def edition_composer(
    engine: Engine, settings: Settings, edition: Edition, signer: DkimSigner | None
) -> EditionComposer:
    """The composer of `edition`'s messages, what every letter shares already checked."""
    secret = signing_key(engine, settings)
    links = SubscriptionLinks(Tokens(secret), str(settings.web.public_url))
    composer = EditionComposer(edition, settings, links, signer, envelopes_for(settings, secret))
    # What every letter shares is checked once, on a letter to nobody: a From address or a
    # Feedback-ID that cannot be sent would fail everyone alike, so it stops the send first.
    composer.check_shared()
    return composer


Variant = tuple[CompiledEdition, BodyTemplate, BodyTemplate]


class EditionComposer:
    """Composes one edition's message for each recipient, signed when a signer is given.

    Each variant's text and HTML are encoded once, on its first recipient, and kept for the
    send; a message then costs the encoding of its greeting and links (see BodyTemplate).
    """

    def __init__(
        self,
        edition: Edition,
        settings: Settings,
        links: SubscriptionLinks,
        signer: DkimSigner | None,
        envelopes: Envelopes | None = None,
    ) -> None:
        """Prepare what every message of `edition` shares: its renderer and list headers.

        `envelopes` gives each message its envelope sender and token (VERP); without, every
        message leaves from the From address and carries no token.
        """
        site_title = settings.site.title_in(edition.language)
        self.renderer = EditionRenderer(
            edition,
            site_title=site_title,
            web_url=str(settings.web.public_url),
            max_html_bytes=settings.digests.max_html_bytes,
        )
        self.edition = edition
        self.mail = settings.mail
        self.links = links
        self.signer = signer
        self.domain = sender_domain(self.mail.from_address)
        self.envelopes = envelopes or Envelopes(self.mail, "")
        self.list_id = f"{edition.kind}.{edition.language}.{self.domain}"
        self.list_name = (
            f"{site_title}: {gettext(edition.language, DIGEST_KINDS[edition.kind].title)}"
        )
        self.feedback = feedback_id(self.mail, edition.kind, edition.language)
        self._encoded: dict[CompiledEdition, tuple[BodyTemplate, BodyTemplate]] = {}
        self._by_topics: dict[tuple[str, ...], Variant] = {}

    def check_shared(self) -> None:
        """Build a letter to nobody, so what every letter shares fails here if it must."""
        nobody = f"nobody@{self.domain}"
        envelope = self.envelopes.of(0, self.edition.id)  # an edition no token can name fails here
        build_message(
            Letter(
                from_address=self.mail.from_address,
                to_email=nobody,
                subject=self.edition.id,
                text="",
                html="",
                list_id=self.list_id,
                list_name=self.list_name,
                unsubscribe_url=self.links.unsubscribe(0, nobody, self.edition.language),
                unsubscribe_mailto=self.mail.unsubscribe_mailto,
                feedback_id=self.feedback,
                mail_token=envelope.mail_token,
                postmark_metadata=envelope.postmark_metadata,
            )
        )

    def compose(self, recipient: audience.Recipient) -> Outgoing:
        """The signed message for one recipient, ready for the transport."""
        compiled, text, html = self._variant(recipient.topics)
        links = self.links
        unsubscribe = links.unsubscribe(recipient.pk, recipient.email, recipient.language)
        in_html, in_text = compiled.fillings(
            recipient.name,
            unsubscribe,
            links.preferences(recipient.pk, recipient.email, recipient.language),
        )
        message_id = make_message_id(self.domain)
        envelope = self.envelopes.of(recipient.pk, self.edition.id)
        data: bytes = build_message(
            Letter(
                from_address=self.mail.from_address,
                to_email=recipient.email,
                to_name=recipient.name,
                subject=compiled.subject,
                text="",  # both parts come encoded, as `bodies`
                html="",
                list_id=self.list_id,
                list_name=self.list_name,
                unsubscribe_url=unsubscribe,
                unsubscribe_mailto=self.mail.unsubscribe_mailto,
                message_id=message_id,
                feedback_id=self.feedback,
                mail_token=envelope.mail_token,
                postmark_metadata=envelope.postmark_metadata,
            ),
            bodies=(text.fill(in_text), html.fill(in_html)),
        )
        if self.signer is not None:
            data = self.signer.sign(data)
        return Outgoing(envelope.sender, recipient.email, message_id, data)

    def _variant(self, topics: tuple[str, ...]) -> Variant:
        """The edition compiled for a reader of `topics`, with its bodies encoded."""
        found = self._by_topics.get(topics)
        if found is None:
            compiled = self.renderer.for_topics(topics)  # several sets of topics share a variant
            if compiled not in self._encoded:
                slots = compiled.placeholders
                self._encoded[compiled] = (
                    BodyTemplate(compiled.text, slots),
                    BodyTemplate(compiled.html, slots),
                )
            found = self._by_topics[topics] = (compiled, *self._encoded[compiled])
        return found


def _recipients_page(
    edition: Edition, connection: Connection, after: int, limit: int
) -> list[audience.Recipient]:
    """The next page of the edition's recipients, after subscriber id `after`."""
    return audience.recipients(connection, edition.kind, edition.language, after, limit)


def count_recipients(edition: Edition, connection: Connection) -> tuple[int, int]:
    """(still to send, already done) among the edition's recipients."""
    receiving = audience.receiving(connection, edition.kind, edition.language)
    everyone = select(func.count()).select_from(subscriber).where(receiving)
    total = connection.scalar(everyone) or 0
    done = connection.scalar(everyone.where(delivered(edition.id, subscriber.c.pk))) or 0
    return total - done, done


def _suppress_bounced(connection: Connection, email: str, detail: str) -> None:
    """Suppress an address whose mail bounced, in the ledger's transaction."""
    # As stored: an address from before today's checks must not stop the ledger's writer.
    registry.suppress(connection, email, "bounced", detail, as_stored=True)


def classify_failure(error: Exception) -> DeliveryStatus | None:
    """The ledger status of a failed send: "bounced", "deferred", "failed", or None.

    "bounced" is a refusal for good (the address is suppressed), "deferred" a passing one;
    anything else that went wrong with one message, such as an address that needs SMTPUTF8
    from a server without it, is "failed", and tried again by the next send. None stops the
    send: a refused session (bad login, TLS, a sender the server refuses) says nothing about
    the recipient and would fail for everyone the same way.
    """
    if isinstance(error, SessionFailure):
        return None
    if isinstance(error, PermanentFailure):
        return DeliveryStatus.BOUNCED
    if isinstance(error, TransientFailure):
        return DeliveryStatus.DEFERRED
    return DeliveryStatus.FAILED
