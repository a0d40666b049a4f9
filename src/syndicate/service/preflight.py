"""Settings that work but will hurt in production, said once when the service starts."""

from __future__ import annotations

import logging

from syndicate.settings import Settings

log = logging.getLogger(__name__)


def warn_about_settings(settings: Settings) -> None:
    """Log a warning for each setting that real mail would suffer from."""
    public_url = settings.web.public_url
    if settings.mail.transport == "smtp" and public_url.scheme == "http":
        # Gmail's and Yahoo's rules for bulk senders (February 2024) ask for RFC 8058
        # one-click unsubscribe; an http URL in List-Unsubscribe does not count, so mail is
        # filtered or refused. The outbox (`make run`) sends nothing, so it is left in peace.
        log.warning(
            'unsubscribe_not_https setting="[web] public_url" public_url=%s transport=smtp '
            'reason="List-Unsubscribe and one-click unsubscribe links would be http; Gmail and '
            'Yahoo require https one-click unsubscribe from bulk senders"',
            public_url,
        )
