"""Subscribers: address normalisation, signed tokens, and the registry on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import Engine, select

from syndicate.store.schema import state, subscriber, suppression
from syndicate.subscribers import audience, registry
from syndicate.subscribers.addresses import clean_name, needs_smtputf8, normalise_address
from syndicate.subscribers.registry import PreferenceError, Preferences
from syndicate.subscribers.tokens import Purpose, TokenError, Tokens, secret_key
from tests.support.fixture_corpus import LANGUAGES, ingest_text
from tests.support.subscribers import CHOICES, DAILY, confirmed

SECRET = "test-secret-key-for-subscription-tokens"
TOPICS = "\n".join(
    [
        '{"type": "topic", "slug": "kurds", "name": "Kurds", "language": "en", "description": "."}',
        '{"type": "topic", "slug": "nato", "name": "NATO", "language": "en", "description": "."}',
    ]
)


# -- addresses ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("  Foo.Bar@Example.COM ", "foo.bar@example.com"),
        ("\u00a0reader@example.org\u00a0", "reader@example.org"),
        ("a@Bücher.Example", "a@xn--bcher-kva.example"),
        ("E\u0301lise@example.com", "\u00e9lise@example.com"),  # NFC: one é, lower-cased
        ("o'brien+news@example.com", "o'brien+news@example.com"),
    ],
)
def test_addresses_are_normalised_so_one_person_is_one_address(raw: str, stored: str) -> None:
    """Case, surrounding spaces, Unicode composition and IDN spelling all fold to one form."""
    assert normalise_address(raw) == stored


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "no-at-sign",
        "a@b",
        "two words@example.com",
        "a@example.com\r\nBcc: victim@example.com",
        "a@example.com\n",
        "\x00a@example.com",
        "a\u2028b@example.com",
        "a@@example.com",
        "x" * 320 + "@example.com",
        "=?utf-8?q?=0D=0A?=@example.com",
        "=?utf-8?b?DQpCY2M6IHZAZXhhbXBsZS5vcmc=?=@example.com",
    ],
)
def test_invalid_addresses_and_control_characters_are_errors(raw: str) -> None:
    """Bad syntax is refused with a ValueError; a line break can never reach a mail header."""
    with pytest.raises(ValueError, match=r"\S"):
        normalise_address(raw)


def test_names_refuse_line_breaks_and_fold_spaces() -> None:
    """A name that could split a mail header is refused; inner runs of spaces become one."""
    assert clean_name("  Leila   Ahmadi ") == "Leila Ahmadi"
    with pytest.raises(ValueError, match="control character"):
        clean_name("Eve\r\nBcc: x@example.com")


def test_only_a_non_ascii_local_part_needs_smtputf8() -> None:
    """An IDN domain is kept in A-labels and needs nothing; a UTF-8 local part needs SMTPUTF8."""
    assert not needs_smtputf8(normalise_address("plain@exämple.com"))
    assert needs_smtputf8(normalise_address("Üñí@exämple.com"))
    assert normalise_address("Üñí@exämple.com") == "üñí@xn--exmple-cua.com"


def encoded(text: str, encoding: str, charset: str = "utf-8") -> str:
    """`text` as one RFC 2047 encoded word."""
    data = text.encode(charset)
    if encoding in "bB":
        return f"=?{charset}?{encoding}?{base64.b64encode(data).decode()}?="
    return f"=?{charset}?{encoding}?{''.join(f'={byte:02X}' for byte in data)}?="


@pytest.mark.parametrize(
    "name",
    [
        "=?utf-8?q?Eve=0D=0ABcc:_x@evil.example?=",
        "=?UTF-8?Q?Eve=0ABcc:_x@evil.example?=",
        "Eve =?utf-8?b?DQpCY2M6IHhAZXZpbC5leGFtcGxl?=",
        "=?utf-8?q?Eve Bcc=0A?=",  # a space inside, which lenient readers decode all the same
        "=?utf-8*en?q?=C2=85?=",  # NEL, with an RFC 2231 language
        "=?iso-8859-1?q?a=85b?=",
        "=?x-unknown?q?a=85b?=",  # an unknown charset, read byte for byte
        "=?utf-8?q?=E2=80=A8?=",
        "=?utf-8?b?DQ?=",  # padding missing
        "=?utf-16?b?" + base64.b64encode("\n".encode("utf-16-le")).decode() + "?=",
        encoded(encoded("\r\nBcc: x@evil.example", "q"), "b"),  # within another one
    ],
)
def test_names_are_refused_when_an_encoded_word_hides_a_control_character(name: str) -> None:
    """An encoded word that decodes to a line break or control is refused like a typed one."""
    with pytest.raises(ValueError, match=r"control character|within"):
        clean_name(name)


@given(
    text=st.text(min_size=1).filter(
        lambda text: any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text)
    ),
    encoding=st.sampled_from("bBqQ"),
    around=st.tuples(st.text(max_size=5), st.text(max_size=5)),
)
def test_no_encoded_word_can_smuggle_a_control_character_into_a_name(
    text: str, encoding: str, around: tuple[str, str]
) -> None:
    """Whatever text with a control character is encoded, once or twice, the name is refused."""
    for word in (encoded(text, encoding), encoded(encoded(text, encoding), "b")):
        with pytest.raises(ValueError, match=r"control character|within"):
            clean_name(around[0] + word + around[1])


@pytest.mark.parametrize(
    "name", ["=?utf-8?q?Eve?=", "Ali =?", "?= x =?", "=?utf-8?b?2LnZhNmK?=", "زهرا\u200cسادات"]
)
def test_names_that_only_look_like_encoded_words_are_kept_as_written(name: str) -> None:
    """A harmless look-alike is kept as typed (mail then shows it as typed, never decoded)."""
    assert clean_name(name) == name


# -- tokens ---------------------------------------------------------------------------------


def test_a_token_names_its_subscriber_and_address() -> None:
    """A fresh token reads back as the subscriber it was minted for, bound to that address."""
    tokens = Tokens(SECRET)
    claim = tokens.read(
        Purpose.UNSUBSCRIBE, tokens.mint(Purpose.UNSUBSCRIBE, 7, "a@x.org"), max_age=60
    )
    assert claim.pk == 7
    assert tokens.owns(claim, "a@x.org")
    assert not tokens.owns(claim, "b@x.org"), "a token minted before the address changed is void"


def test_a_token_does_not_reveal_the_address() -> None:
    """Links end up in logs: the token carries a keyed fingerprint, not the address."""
    token = Tokens(SECRET).mint(Purpose.PREFERENCES, 7, "secret.reader@example.com")
    assert "secret" not in token
    assert "example" not in token


def _tamper(token: str, position: int) -> str:
    character = "A" if token[position] != "A" else "B"
    return token[:position] + character + token[position + 1 :]


@pytest.mark.parametrize(
    "token",
    [
        pytest.param("", id="empty"),
        pytest.param("garbage", id="garbage"),
        pytest.param("a.b.c", id="three-dotted-parts"),
        # Minted tokens carry the time: named, so every collection (each xdist worker's) agrees.
        pytest.param(
            Tokens("another key entirely").mint(Purpose.CONFIRM, 1, "a@x.org"), id="another-key"
        ),
        pytest.param(
            _tamper(Tokens(SECRET).mint(Purpose.CONFIRM, 1, "a@x.org"), 2), id="payload-changed"
        ),
        pytest.param(
            _tamper(Tokens(SECRET).mint(Purpose.CONFIRM, 1, "a@x.org"), -3),
            id="signature-changed",
        ),
    ],
)
def test_forged_and_tampered_tokens_are_refused(token: str) -> None:
    """A token not signed with our key, or altered anywhere, is refused as forged."""
    with pytest.raises(TokenError) as refused:
        Tokens(SECRET).read(Purpose.CONFIRM, token, max_age=3600)
    assert refused.value.reason == "forged"


def test_expired_tokens_are_refused() -> None:
    """A token older than its purpose allows is refused as expired."""
    three_days_ago = Tokens(SECRET, clock=lambda: time.time() - 3 * 86400)
    token = three_days_ago.mint(Purpose.CONFIRM, 1, "a@x.org")
    with pytest.raises(TokenError) as refused:
        Tokens(SECRET).read(Purpose.CONFIRM, token, max_age=48 * 3600)
    assert refused.value.reason == "expired"
    assert Tokens(SECRET).read(Purpose.CONFIRM, token, max_age=4 * 86400).pk == 1


@pytest.mark.parametrize(
    ("minted", "used"),
    [
        (Purpose.CONFIRM, Purpose.UNSUBSCRIBE),
        (Purpose.PREFERENCES, Purpose.UNSUBSCRIBE),
        (Purpose.UNSUBSCRIBE, Purpose.PREFERENCES),
    ],
)
def test_a_token_for_one_purpose_is_refused_for_another(minted: Purpose, used: Purpose) -> None:
    """A confirmation link cannot unsubscribe anyone, nor an unsubscribe link edit preferences."""
    tokens = Tokens(SECRET)
    with pytest.raises(TokenError) as refused:
        tokens.read(used, tokens.mint(minted, 1, "a@x.org"), max_age=3600)
    assert refused.value.reason == "wrong purpose"


def _mailed_before(purpose: Purpose, pk: int, email: str, *, issued: float | None = None) -> str:
    """A token as links mailed before the compact form carried it (itsdangerous, salted)."""
    signer = TimestampSigner if issued is None else _PastSigner
    serializer = URLSafeTimedSerializer(
        SECRET,
        salt="syndicate.subscribers." + purpose.value,
        signer=signer,
        signer_kwargs={"digest_method": hashlib.sha256},
    )
    _PastSigner.moment = int(issued or 0)
    return str(serializer.dumps([pk, Tokens(SECRET).fingerprint(email)]))


class _PastSigner(TimestampSigner):
    """An itsdangerous signer that dates its signatures at `moment`."""

    moment = 0

    def get_timestamp(self) -> int:
        """The moment set for the token being made."""
        return self.moment


def test_tokens_are_compact_url_safe_and_carry_no_dots() -> None:
    """A token is one short URL-safe word (no dots, so it never looks like the older form)."""
    tokens = Tokens(SECRET)
    for pk in (0, 7, 2**31, 2**63 - 1):
        token = tokens.mint(Purpose.UNSUBSCRIBE, pk, "a@x.org")
        assert re.fullmatch(r"[A-Za-z0-9_-]{40,60}", token)
        assert tokens.read(Purpose.UNSUBSCRIBE, token, max_age=60).pk == pk
    with pytest.raises(ValueError, match="pk"):
        tokens.mint(Purpose.CONFIRM, -1, "a@x.org")


def test_changing_any_letter_of_a_token_makes_it_forged() -> None:
    """Whichever letter of a token is changed, and to whatever, it is refused as forged."""
    tokens = Tokens(SECRET)
    token = tokens.mint(Purpose.PREFERENCES, 123456, "a@x.org")
    for position in range(len(token)):
        for letter in "Aa0_-":
            if token[position] != letter:
                changed = token[:position] + letter + token[position + 1 :]
                with pytest.raises(TokenError) as refused:
                    tokens.read(Purpose.PREFERENCES, changed, max_age=60)
                assert refused.value.reason == "forged"
    for changed in (token[:-1], token + "A", token + "=", " " + token, token.upper()):
        with pytest.raises(TokenError):
            tokens.read(Purpose.PREFERENCES, changed, max_age=60)


def test_a_token_from_the_future_is_refused_as_expired() -> None:
    """A token dated later than now (a clock set wrong) is refused, as itsdangerous refused it."""
    tomorrow = Tokens(SECRET, clock=lambda: time.time() + 86400)
    token = tomorrow.mint(Purpose.UNSUBSCRIBE, 1, "a@x.org")
    with pytest.raises(TokenError) as refused:
        Tokens(SECRET).read(Purpose.UNSUBSCRIBE, token, max_age=400 * 86400)
    assert refused.value.reason == "expired"


@pytest.mark.parametrize("purpose", list(Purpose))
def test_links_mailed_before_the_compact_tokens_keep_working(purpose: Purpose) -> None:
    """An itsdangerous token already in someone's mailbox reads as it did, bound to its address."""
    tokens = Tokens(SECRET)
    claim = tokens.read(purpose, _mailed_before(purpose, 42, "a@x.org"), max_age=60)
    assert (claim.purpose, claim.pk) == (purpose, 42)
    assert tokens.owns(claim, "a@x.org")
    assert not tokens.owns(claim, "b@x.org")


def test_old_tokens_are_still_refused_when_expired_tampered_or_misused() -> None:
    """The older form keeps its refusals: expired, forged, and wrong purpose."""
    tokens = Tokens(SECRET)
    old = _mailed_before(Purpose.CONFIRM, 1, "a@x.org", issued=time.time() - 3 * 86400)
    with pytest.raises(TokenError) as refused:
        tokens.read(Purpose.CONFIRM, old, max_age=48 * 3600)
    assert refused.value.reason == "expired"
    fresh = _mailed_before(Purpose.UNSUBSCRIBE, 1, "a@x.org")
    for token, purpose, reason in (
        (_tamper(fresh, 2), Purpose.UNSUBSCRIBE, "forged"),
        (_tamper(fresh, -3), Purpose.UNSUBSCRIBE, "forged"),
        (fresh, Purpose.PREFERENCES, "wrong purpose"),
    ):
        with pytest.raises(TokenError) as refused:
            tokens.read(purpose, token, max_age=60)
        assert refused.value.reason == reason


def test_secret_key_is_generated_once_and_shared(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    """With no key configured, every process gets the same generated key, and a warning says so."""
    assert secret_key(engine, "configured") == "configured"
    with caplog.at_level(logging.WARNING):
        first = secret_key(engine, "")
    assert len(first) >= 32
    assert secret_key(engine, "") == first
    with engine.connect() as connection:
        stored = connection.execute(select(state.c.value).where(state.c.name == "secret_key"))
        assert stored.scalar_one() == first
    assert "secret_key_unset" in caplog.text
    assert 'setting="[security] secret_key"' in caplog.text


def test_secret_key_warning_is_logged_once_a_process(
    sqlite_engine: Engine,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """One start asks for the key in the web site and in every send: one warning, not five."""
    from syndicate.send.plan import subscription_links
    from syndicate.settings import load_settings
    from syndicate.web.site import create_site

    monkeypatch.delenv("SYNDICATE_SECURITY__SECRET_KEY", raising=False)
    monkeypatch.chdir(tmp_path)  # no settings file: the defaults, with no key
    settings = load_settings()
    with caplog.at_level(logging.WARNING):
        create_site(sqlite_engine, settings)
        for _language in LANGUAGES:
            subscription_links(sqlite_engine, settings)
    warnings = [r for r in caplog.records if "secret_key_unset" in r.getMessage()]
    assert len(warnings) == 1


# -- the registry ---------------------------------------------------------------------------


def _status(engine: Engine, email: str) -> str | None:
    found = registry.find_by_email(engine, email)
    return found.status if found else None


def _everyone(engine: Engine, kind: str = "daily", language: str = "en") -> list[str]:
    with engine.connect() as connection:
        return [r.email for r in audience.recipients(connection, kind, language, 0, 1000)]


def _confirmed(engine: Engine, email: str, preferences: Preferences = DAILY) -> int:
    return confirmed(engine, email, preferences).pk


def test_subscribe_creates_a_pending_subscriber_who_gets_nothing_yet(engine: Engine) -> None:
    """A new address is stored pending and receives no digest until it confirms."""
    pending = registry.subscribe(engine, " Reader@Example.com", DAILY, CHOICES)
    assert pending is not None
    assert pending.email == "reader@example.com"
    assert _status(engine, "reader@example.com") == "pending"
    assert _everyone(engine) == []
    confirmed = registry.confirm(engine, pending.pk)
    assert confirmed is not None
    assert confirmed.status == "confirmed"
    assert confirmed.confirmed_at is not None
    assert _everyone(engine) == ["reader@example.com"]


def test_subscribing_again_while_pending_refreshes_the_request(engine: Engine) -> None:
    """Asking twice keeps one subscriber, with the latest choices, and mails a new link."""
    first = registry.subscribe(engine, "reader@example.com", DAILY, CHOICES)
    again = registry.subscribe(
        engine, "READER@example.com", Preferences("ar", ("weekly",), name="Leila"), CHOICES
    )
    assert first is not None
    assert again is not None
    assert again.pk == first.pk
    stored = registry.find(engine, first.pk)
    assert stored is not None
    assert (stored.language, stored.digests, stored.name) == ("ar", ("weekly",), "Leila")


def test_subscribing_a_confirmed_address_changes_nothing(engine: Engine) -> None:
    """Someone else typing a subscriber's address neither mails them nor alters their choices."""
    pk = _confirmed(engine, "reader@example.com")
    assert (
        registry.subscribe(engine, "reader@example.com", Preferences("fa", ("monthly",)), CHOICES)
        is None
    )
    stored = registry.find(engine, pk)
    assert stored is not None
    assert (stored.status, stored.language, stored.digests) == ("confirmed", "en", ("daily",))


def test_unsubscribe_suppresses_the_address(engine: Engine) -> None:
    """Unsubscribing stops every digest and puts the address on the suppression list."""
    pk = _confirmed(engine, "reader@example.com")
    done = registry.unsubscribe(engine, pk, detail="one-click")
    assert done is not None
    assert done.status == "unsubscribed"
    assert registry.is_suppressed(engine, "Reader@Example.com")
    assert registry.suppression_reason(engine, "reader@example.com") == "unsubscribed"
    assert _everyone(engine) == []
    assert registry.unsubscribe(engine, pk) is not None, "twice is harmless"
    assert registry.confirm(engine, pk) is None, "an old confirmation link cannot undo it"


def test_an_unsubscribed_reader_may_come_back_only_by_confirming(engine: Engine) -> None:
    """Re-subscribing after unsubscribing mails a link; digests resume only after it is clicked."""
    pk = _confirmed(engine, "reader@example.com")
    registry.unsubscribe(engine, pk)
    pending = registry.subscribe(engine, "reader@example.com", DAILY, CHOICES)
    assert pending is not None
    assert pending.pk == pk
    assert registry.is_suppressed(engine, "reader@example.com")
    assert _everyone(engine) == []
    registry.confirm(engine, pk)
    assert not registry.is_suppressed(engine, "reader@example.com")
    assert _everyone(engine) == ["reader@example.com"]


@pytest.mark.parametrize("reason", ["bounced", "complained"])
def test_bounced_and_complained_addresses_are_never_mailed(engine: Engine, reason: str) -> None:
    """A hard bounce or a complaint removes a confirmed reader from every send, for good."""
    pk = _confirmed(engine, "reader@example.com")
    registry.suppress(engine, "READER@example.com", reason, "550 5.1.1 no such user")  # type: ignore[arg-type]
    assert _status(engine, "reader@example.com") == "confirmed"
    assert _everyone(engine) == []
    assert registry.subscribe(engine, "reader@example.com", DAILY, CHOICES) is None
    registry.unsubscribe(engine, pk)
    assert registry.suppression_reason(engine, "reader@example.com") == reason, (
        "the stronger reason stays"
    )


def test_a_complaint_outranks_an_unsubscribe(engine: Engine) -> None:
    """A later complaint replaces an unsubscribe, so no re-subscription can lift it."""
    pk = _confirmed(engine, "reader@example.com")
    registry.unsubscribe(engine, pk)
    registry.suppress(engine, "reader@example.com", "complained", "feedback loop")
    assert registry.suppression_reason(engine, "reader@example.com") == "complained"
    assert registry.subscribe(engine, "reader@example.com", DAILY, CHOICES) is None


def test_suppressing_an_unknown_address_still_protects_it(engine: Engine) -> None:
    """A bounce for an address not yet subscribed keeps it from ever being mailed."""
    registry.suppress(engine, "stranger@example.com", "bounced", "")
    assert registry.subscribe(engine, "stranger@example.com", DAILY, CHOICES) is None
    assert registry.find_by_email(engine, "stranger@example.com") is None
    with pytest.raises(ValueError, match="suppression reason"):
        registry.suppress(engine, "stranger@example.com", "bored", "")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("preferences", "field"),
    [
        (Preferences("de", ("daily",)), "language"),
        (Preferences("en", ("hourly",)), "digests"),
        (Preferences("en", ()), "digests"),
        (Preferences("en", ("daily",), ("no-such-topic",)), "topics"),
        (Preferences("en", ("daily",), name="Eve\nBcc: x@example.com"), "name"),
    ],
)
def test_choices_are_validated(engine: Engine, preferences: Preferences, field: str) -> None:
    """Languages, digests and topics must be ones the site offers; nothing is stored otherwise."""
    ingest_text(engine, TOPICS)
    with pytest.raises(PreferenceError) as refused:
        registry.subscribe(engine, "reader@example.com", preferences, CHOICES)
    assert refused.value.field == field
    assert registry.find_by_email(engine, "reader@example.com") is None


def test_update_preferences_stores_known_topics_in_order(engine: Engine) -> None:
    """Preferences are stored canonically: digests in settings order, topics sorted."""
    ingest_text(engine, TOPICS)
    pk = _confirmed(engine, "reader@example.com")
    stored = registry.update_preferences(
        engine, pk, Preferences("fa", ("monthly", "daily"), ("nato", "kurds"), "Sara"), CHOICES
    )
    assert (stored.language, stored.digests, stored.topics, stored.name) == (
        "fa",
        ("daily", "monthly"),
        ("kurds", "nato"),
        "Sara",
    )
    with pytest.raises(LookupError):
        registry.update_preferences(engine, pk + 100, DAILY, CHOICES)


def test_recipients_filter_by_kind_language_and_status(engine: Engine) -> None:
    """Only confirmed subscribers of that digest in that language receive it, with their topics."""
    ingest_text(engine, TOPICS)
    _confirmed(engine, "daily-en@example.com", Preferences("en", ("daily",), ("kurds",)))
    _confirmed(engine, "weekly-en@example.com", Preferences("en", ("weekly",)))
    _confirmed(engine, "both-ar@example.com", Preferences("ar", ("daily", "weekly")))
    registry.subscribe(engine, "pending-en@example.com", DAILY, CHOICES)
    with engine.connect() as connection:
        daily_en = audience.recipients(connection, "daily", "en", 0, 10)
    assert [(r.email, r.topics) for r in daily_en] == [("daily-en@example.com", ("kurds",))]
    assert _everyone(engine, "weekly", "en") == ["weekly-en@example.com"]
    assert _everyone(engine, "weekly", "ar") == ["both-ar@example.com"]
    assert _everyone(engine, "monthly", "ar") == []


def test_recipients_page_by_pk_and_never_cross_the_suppression_list(engine: Engine) -> None:
    """Paging by last pk visits every receiver once, in order, and skips suppressed addresses."""
    pks = [_confirmed(engine, f"reader{n}@example.com") for n in range(9)]
    registry.suppress(engine, "reader2@example.com", "bounced", "")
    registry.suppress(engine, "reader5@example.com", "complained", "")
    registry.unsubscribe(engine, pks[7])
    pages: list[list[int]] = []
    after = 0
    with engine.connect() as connection:
        while batch := audience.recipients(connection, "daily", "en", after, 2):
            pages.append([r.pk for r in batch])
            after = batch[-1].pk
    expected = [pk for n, pk in enumerate(pks) if n not in (2, 5, 7)]
    assert [pk for page in pages for pk in page] == expected
    assert all(len(page) == 2 for page in pages[:-1])


def test_one_address_is_one_row_in_the_store(engine: Engine) -> None:
    """Every spelling of an address lands on the same stored row."""
    for spelling in ("Reader@Example.com", " reader@EXAMPLE.COM", "reader@example.com"):
        registry.subscribe(engine, spelling, DAILY, CHOICES)
    with engine.connect() as connection:
        assert connection.execute(select(subscriber.c.email)).scalars().all() == [
            "reader@example.com"
        ]
        assert connection.execute(select(suppression.c.email)).first() is None
