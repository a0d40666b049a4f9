"""Auto-replies: out-of-office and vacation notices, which are not bounces and record nothing.

Told by their headers (RFC 3834 Auto-Submitted: auto-replied, X-Autoreply, X-Autorespond,
Precedence: auto_reply) or, for mailers that set none, by their subject in the languages our
readers write in: English, Arabic ("رد تلقائي") and Persian ("پاسخ خودکار"), and a few others
common in inboxes.
"""

from __future__ import annotations

import re
from email.message import Message

from syndicate.feedback.mime import header

AUTO_REPLY = "auto-reply"
_SUBJECTS = re.compile(
    r"automatic reply|auto[- ]?reply|auto[- ]?response|autoresponse|out of (?:the )?office"
    r"|\bvacation\b|\baway from\b|abwesenheit|réponse automatique|absence|respuesta automática"
    r"|risposta automatica|رد تلقائي|رد آلي|الرد التلقائي|خارج المكتب|پاسخ خودکار|پاسخ خودكار"
    r"|خارج از دفتر",
    re.IGNORECASE,
)


def is_auto_reply(message: Message) -> bool:
    """Whether `message` says it was sent automatically in reply, by header or subject."""
    submitted = header(message, "Auto-Submitted").lower()
    if submitted.startswith("auto-replied"):
        return True
    if header(message, "X-Autoreply") or header(message, "X-Autorespond"):
        return True
    precedence = (header(message, "Precedence") + header(message, "X-Precedence")).lower()
    if "auto_reply" in precedence or "auto-reply" in precedence:
        return True
    return bool(_SUBJECTS.search(header(message, "Subject")))
