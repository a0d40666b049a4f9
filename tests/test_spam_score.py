"""Every message Syndicate sends scores 0.0 with SpamAssassin (Debian's, local tests only).

The messages are the real ones: each digest kind in each language sent through the ledger to
a recording transport (DKIM-signed, as production sends them), and the confirmation mail in
each language written to the Maildir outbox. SpamAssassin reads them all in one process (it
takes about a second to start, then a few hundredths a message), with a throwaway home so
no user state (Bayes, auto-welcome lists, preferences) colours the score.
"""

from __future__ import annotations

import mailbox
import shutil
import subprocess
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import Engine

from syndicate.delivery.ledger import send_edition
from syndicate.delivery.recording import RecordingTransport
from syndicate.domain.periods import KINDS
from syndicate.send.confirmation import confirmation_sender
from syndicate.send.plan import plan_send
from syndicate.settings import MailSettings, SecuritySettings, Settings, WebSettings
from syndicate.store.leases import holder_name
from syndicate.subscribers.links import ConfirmationRequest
from syndicate.subscribers.registry import Choices, Preferences
from tests.support.digest_corpus import build, digest_corpus, ingest
from tests.support.letters import dkim_signer
from tests.support.subscribers import confirmed

SPAMASSASSIN = shutil.which("spamassassin")
LANGUAGES = ("en", "ar", "fa")
NAMES = {"en": "Sara Lee", "ar": "سارة", "fa": "سارا"}
# Each rule that fired and its points, in a header of its own (X-Spam-Tests).
RULES_HEADER = "add_header all Tests _TESTSSCORES(,)_"
INFORMATIONAL = 0.01  # rules such as HTML_MESSAGE (0.001) only say what a message is


def settings_for(outbox: Path) -> Settings:
    """Production-like settings: an https public URL, the outbox in `outbox`."""
    return Settings().model_copy(
        update={
            "web": WebSettings(public_url="https://news.example/"),
            "mail": MailSettings(outbox_dir=outbox),
            "security": SecuritySettings(secret_key="a spam-test secret that is long enough"),
        }
    )


def digests(engine: Engine, settings: Settings) -> dict[str, bytes]:
    """Each kind of digest in each language, as sent to a subscriber following every topic."""
    ingest(engine, *digest_corpus())
    choices = Choices(LANGUAGES, KINDS)
    for language in LANGUAGES:
        wants = Preferences(language, KINDS, ("kurds", "resistance"), NAMES[language])
        confirmed(engine, f"reader-{language}@example.org", wants, choices)
    sent = {}
    dkim = dkim_signer()
    for kind in KINDS:
        for language in LANGUAGES:
            edition = build(engine, kind, language)
            transport = RecordingTransport()
            plan = plan_send(engine, settings, edition, transport, dkim)
            assert send_edition(engine, plan, holder=holder_name()).sent == 1
            [message] = transport.sent
            sent[f"{kind} digest ({language})"] = message.message
    return sent


def confirmations(settings: Settings) -> dict[str, bytes]:
    """The confirmation mail in each language, as the outbox transport wrote it."""
    written = {}
    for language in LANGUAGES:
        outbox = settings.mail.outbox_dir / language
        send = confirmation_sender(
            settings.model_copy(update={"mail": MailSettings(outbox_dir=outbox)})
        )
        url = f"https://news.example/subscribe/confirm?token=abc&lang={language}"
        cancel = f"https://news.example/subscribe/unsubscribe?token=def&lang={language}"
        address = f"reader-{language}@example.org"
        send(ConfirmationRequest(address, NAMES[language], language, url, cancel))
        [message] = list(mailbox.Maildir(outbox, create=False))
        written[f"confirmation ({language})"] = message.as_bytes()
    return written


def spamassassin(messages: dict[str, bytes], home: Path) -> dict[str, tuple[str, str]]:
    """SpamAssassin's score and rules (`RULE=points,…`) for each message, keyed like `messages`.

    One process reads them all as an mbox; its home is `home`, so nothing of the user's
    (Bayes data, welcome lists, preferences) is read or kept.
    """
    assert SPAMASSASSIN is not None
    home.mkdir()
    names = {}
    box = mailbox.mbox(home / "in.mbox")
    for name, data in messages.items():
        names[message_from_bytes(data, policy=policy.default)["Message-ID"]] = name
        box.add(mailbox.mboxMessage(data))
    box.close()
    with (home / "in.mbox").open("rb") as source:
        result = subprocess.run(
            [SPAMASSASSIN, "-t", "-L", "-x", "-p", str(home / "user_prefs"), "--mbox",
             "--cf", RULES_HEADER],
            stdin=source, capture_output=True, env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
            timeout=240, check=True,
        )  # fmt: skip
    (home / "out.mbox").write_bytes(result.stdout)
    scored = {}
    judged = mailbox.mbox(home / "out.mbox", create=False)
    for message in judged:
        status, rules = str(message["X-Spam-Status"]), str(message["X-Spam-Tests"])
        score = status.split("score=", 1)[1].split()[0]
        scored[names[message["Message-ID"]]] = (score, "".join(rules.split()))
    judged.close()
    assert scored.keys() == messages.keys(), result.stderr.decode()
    return scored


@pytest.mark.skipif(SPAMASSASSIN is None, reason="spamassassin is not installed (.ci/run has it)")
def test_every_message_scores_zero(sqlite_engine: Engine, tmp_path: Path) -> None:
    """Daily, weekly and monthly digests in en, ar and fa and the confirmations: all 0.0."""
    settings = settings_for(tmp_path / "outbox")
    messages = {**digests(sqlite_engine, settings), **confirmations(settings)}
    scored = spamassassin(messages, tmp_path / "spamassassin")
    failing = {
        name: f"score {score}: {rules}"
        for name, (score, rules) in scored.items()
        if float(score) != 0.0
        or any(
            abs(float(rule.rpartition("=")[2])) >= INFORMATIONAL
            for rule in rules.split(",")
            if rule
        )
    }
    assert failing == {}, "\n".join(f"{name}: {why}" for name, why in failing.items())
