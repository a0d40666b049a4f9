"""The confirmation mail: a new subscriber's link, sent the moment the subscription page asks.

Built like a digest's messages (send.plan's sender domain and Feedback-ID, send.envelopes'
VERP sender and X-Syndicate-Mail token) and sent at once through the transport [mail] names;
no ledger records it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from syndicate.delivery.configured import transport_from_settings
from syndicate.delivery.message import MessageBytes, Notice, build_notice, make_message_id
from syndicate.i18n.catalogs import direction, gettext
from syndicate.i18n.templating import environment
from syndicate.send.envelopes import Envelope, envelopes_for
from syndicate.send.plan import feedback_id, sender_domain
from syndicate.settings import Settings
from syndicate.subscribers.links import ConfirmationRequest
from syndicate.subscribers.verp import CONFIRMATION

log = logging.getLogger(__name__)


def confirmation_sender(
    settings: Settings, secret: str = ""
) -> Callable[[ConfirmationRequest], None]:
    """A function that mails a confirmation link (the subscription pages call it).

    With `secret` (the key the links are signed with), a request that names its subscriber
    is sent with a VERP envelope sender and token, as a digest is.
    """
    envelopes = envelopes_for(settings, secret)

    def send(request: ConfirmationRequest) -> None:
        envelope = envelopes.plain if request.pk is None else envelopes.of(request.pk, CONFIRMATION)
        message = confirmation_message(settings, request, envelope=envelope)
        asyncio.run(_deliver_one(settings, request.email, message, envelope))
        log.info("confirmation sent language=%s", request.language)

    return send


def confirmation_message(
    settings: Settings, request: ConfirmationRequest, *, envelope: Envelope | None = None
) -> MessageBytes:
    """The confirmation mail: a short text and HTML note with the link, in the reader's language.

    Built like a digest, header by header, never by the email package's folding: a name
    that reads as an encoded word must reach the reader as the text it is. Its List-Unsubscribe
    cancels the pending subscription; its text goes as it reads, the link whole on one line.
    """
    language = request.language
    site = settings.site.title_in(language)
    domain = sender_domain(settings.mail.from_address)
    context = {
        "site": site,
        "name": request.name,
        "url": request.confirm_url,
        "language": language,
        "dir": direction(language),
        "_": lambda message: gettext(language, message),
    }
    env = environment()
    return build_notice(
        Notice(
            from_address=settings.mail.from_address,
            to_email=request.email,
            to_name=request.name,
            subject=gettext(language, "Confirm your subscription to {site}").format(site=site),
            text=env.get_template("mail/confirm.txt.j2").render(**context),
            html=env.get_template("mail/confirm.html").render(**context),
            message_id=make_message_id(domain),
            feedback_id=feedback_id(settings.mail, "confirmation", language),
            unsubscribe_url=request.cancel_url,
            unsubscribe_mailto=settings.mail.unsubscribe_mailto,
            list_id=f"confirmation.{language}.{domain}",
            list_name=site,
            mail_token=envelope.mail_token if envelope else "",
            postmark_metadata=envelope.postmark_metadata if envelope else False,
        )
    )


async def _deliver_one(
    settings: Settings, recipient: str, message: bytes, envelope: Envelope
) -> None:
    transport = transport_from_settings(settings.mail)
    try:
        await transport.send(envelope.sender, recipient, message)
    finally:
        await transport.close()
