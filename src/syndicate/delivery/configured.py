"""The transport the settings name: the outbox folder (the default) or an SMTP server.

Apart from delivery.transports because both transports import their failures from there.
"""

from __future__ import annotations

from syndicate.delivery.outbox import OutboxTransport
from syndicate.delivery.smtp import SmtpTransport
from syndicate.delivery.transports import Transport
from syndicate.settings import MailSettings


def transport_from_settings(mail: MailSettings) -> Transport:
    """The transport [mail] names: the outbox folder (the default) or an SMTP server."""
    if mail.transport == "smtp":
        return SmtpTransport(mail.smtp)
    return OutboxTransport(mail.outbox_dir)
