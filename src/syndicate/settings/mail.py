"""The newsletter sections: how mail leaves (SMTP, DKIM), what digests hold, subscriptions."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator

from syndicate.domain.periods import KINDS, Kind
from syndicate.settings.fields import Section, unset_when_empty

# Gmail's Feedback-ID, "a:b:c:SenderId"; the message builder holds every header to this shape.
FEEDBACK_ID_PATTERN = r"[A-Za-z0-9._-]{1,64}(?::[A-Za-z0-9._-]{1,64}){0,3}"
# VERP adds "+" and a token of at most this many characters to [mail] bounce_address's local
# part (subscribers.verp: 36 for the largest subscriber id; a margin for what may be added).
VERP_TOKEN_ROOM = 40
LOCAL_PART_OCTETS = 64  # SMTP's limit on a local part (RFC 5321 4.5.3.1.1)
_ATEXT = r"A-Za-z0-9!#$%&'*/=?^_`{|}~-"  # atext without "+", which VERP's own separator is
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A plain ASCII address: a dot-atom local part at a domain of LDH labels, with at least one dot.
PLAIN_ADDRESS = re.compile(rf"[{_ATEXT}]+(?:\.[{_ATEXT}]+)*@{_LABEL}(?:\.{_LABEL})+")


class SmtpSettings(Section):
    """An SMTP relay or MTA."""

    host: str = Field("localhost", description="SMTP server host.")
    port: int = Field(25, ge=1, le=65535, description="SMTP server port.")
    username: str = Field("", description="Login name; empty for none.")
    password: SecretStr = Field(
        SecretStr(""), description="Login password (set it in the environment)."
    )
    security: Literal["none", "starttls", "tls"] = Field("none", description="Transport security.")
    pool_size: int = Field(4, ge=1, le=64, description="Connections kept open and reused.")
    rate_per_second: float = Field(
        0, ge=0, description="Messages a second at most, across every worker; 0 for no limit."
    )
    max_connections: int = Field(
        0,
        ge=0,
        description="Open connections at most, across every worker; 0 for no cap.",
    )
    timeout: float = Field(30, gt=0, description="Seconds to wait for the server to answer.")
    retries: int = Field(
        5, ge=0, le=20, description="Tries after a 4xx reply or a dropped connection, with backoff."
    )


class DkimSettings(Section):
    """DKIM signing of every digest message (off while `domain` is empty)."""

    domain: str = Field("", description="The signing domain (d=); empty to send unsigned.")
    selector: str = Field("syndicate", description="The DNS selector (s=).")
    key_file: Annotated[Path | None, BeforeValidator(unset_when_empty)] = Field(
        None, description="PEM file holding the RSA private key."
    )


class MailSettings(Section):
    """How digests leave the building."""

    transport: Literal["outbox", "smtp"] = Field("outbox", description="outbox (Maildir) or smtp.")
    from_address: str = Field("Syndicate Demo News <news@site.example>", description="From header.")
    outbox_dir: Path = Field(Path("var/outbox"), description="Maildir the outbox transport writes.")
    unsubscribe_mailto: str = Field(
        "",
        description="Address of the mailto: List-Unsubscribe URI; empty for unsubscribe@ the "
        "From address's domain.",
    )
    bounce_address: str = Field(
        "",
        description="Envelope sender for VERP, e.g. bounces@news.example: each message's "
        "Return-Path becomes bounces+TOKEN@news.example, naming its subscriber and edition; "
        "empty to use the From address.",
    )
    processes: int = Field(
        1,
        ge=0,
        le=64,
        description="Processes a send uses, sharing the pool's connections; 0 for one per CPU "
        "core (a send to fewer than 2,000 recipients stays in one).",
    )
    feedback_id: str = Field(
        "",
        description="Feedback-ID header for Gmail's Feedback Loop, 'a:b:c:SenderId' (up to "
        "four fields of letters, digits, '.', '_', '-'); {kind} and {language} are replaced "
        "by the mail's kind (daily, weekly, monthly, confirmation) and language; empty for none.",
    )
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    dkim: DkimSettings = Field(default_factory=DkimSettings)

    @field_validator("feedback_id")
    @classmethod
    def _feedback_id_is_header_safe(cls, value: str) -> str:
        # Checked with the longest values the placeholders take, so no mail can fail on it.
        filled = value.replace("{kind}", "confirmation").replace("{language}", "xxx")
        if value and not re.fullmatch(FEEDBACK_ID_PATTERN, filled):
            raise ValueError(
                f"{value!r} is not a Feedback-ID: up to four fields separated by ':' (the last "
                "naming the sender), each 1 to 64 letters, digits, '.', '_' or '-', or the "
                "placeholders {kind} and {language}"
            )
        return value

    @field_validator("bounce_address")
    @classmethod
    def _bounce_address_leaves_room_for_verp(cls, value: str) -> str:
        if not value:
            return value
        if not PLAIN_ADDRESS.fullmatch(value) or len(value) > 254:
            raise ValueError(
                f"[mail] bounce_address {value!r} is not a plain address such as "
                "bounces@news.example (no name, no angle brackets, no '+', ASCII only)"
            )
        room = LOCAL_PART_OCTETS - 1 - VERP_TOKEN_ROOM
        local = value.rpartition("@")[0]
        if len(local) > room:
            raise ValueError(
                f"[mail] bounce_address {value!r}: its local part {local!r} has {len(local)} "
                f"characters; at most {room} leave room for '+' and the {VERP_TOKEN_ROOM}-character "
                f"VERP token within SMTP's {LOCAL_PART_OCTETS}-octet limit"
            )
        return value


class DigestSettings(Section):
    """The digest newsletters: which run, and what goes in them."""

    kinds: tuple[Kind, ...] = Field(KINDS, description="Which digests exist and are sent.")
    picks: int = Field(6, ge=0, le=50, description="Editor's Choice items in an edition, at most.")
    most_viewed: int = Field(
        6, ge=0, le=50, description="Most Viewed items in an edition, at most."
    )
    topic_items: int = Field(
        3, ge=0, le=20, description="Latest articles per followed topic, for topic followers."
    )
    skip_empty: bool = Field(
        True, description="Skip an edition with nothing new since the previous one of its kind."
    )
    max_html_bytes: int = Field(
        100_000, ge=10_000, description="HTML size limit (Gmail clips past 102 KB); items trimmed."
    )


class SubscriberSettings(Section):
    """Subscription pages and confirmation."""

    confirm_hours: int = Field(48, ge=1, description="Hours a confirmation link stays valid.")
    link_days: int = Field(
        365, ge=1, description="Days an unsubscribe or preferences link in a digest stays valid."
    )
    subscribe_per_hour: int = Field(
        10, ge=1, description="Subscribe requests one client address may make in an hour."
    )
