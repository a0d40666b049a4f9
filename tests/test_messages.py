"""Digest messages: MIME structure, list headers, encodings, injection safety and DKIM."""

from __future__ import annotations

import base64
import random
import re
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path

import dkim
import idna
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st

from syndicate.delivery.dkim import DkimKeyError, DkimSigner
from syndicate.delivery.message import (
    BodyTemplate,
    Letter,
    MessageBytes,
    MessageError,
    Notice,
    build_message,
    build_notice,
)
from syndicate.settings import DkimSettings
from tests.support.letters import HEADERS, LETTER, WHEN
from tests.support.mail_reader import read_back, shown_name

ARABIC = replace(
    LETTER,
    from_address="أخبار الموقع <news@site.example>",
    to_name="محمد العراقي",
    subject="الموجز اليومي: العراق والولايات المتحدة تتفقان على جدول زمني جديد للانسحاب",
    text="اختيار المحرر\n\n١. العراق والولايات المتحدة\n" * 40,
    html='<div dir="rtl"><p>اختيار المحرر</p><p>العراق والولايات المتحدة</p></div>\n' * 40,
    list_id="daily.ar.site.example",
)
PERSIAN = replace(
    LETTER,
    to_name="زهرا\u200cسادات",  # a zero-width non-joiner belongs inside Persian words
    subject="خلاصه\u200cی روزانه: گزارش\u200cهای برگزیده",
    text="گزارش\u200cهای برگزیده\n",
    html='<p dir="rtl">گزارش\u200cهای برگزیده</p>',
)


def parse(raw: bytes) -> EmailMessage:
    """The message as the email package reads it (modern policy: decoded headers)."""
    message = message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def reference(letter: Letter, message_id: str) -> bytes:
    """The same letter built the straightforward way, with email.message."""
    message = EmailMessage(policy=policy.SMTP)
    name, address = parseaddr(letter.from_address)
    message["From"] = Address(display_name=name, addr_spec=address)
    message["To"] = Address(display_name=letter.to_name, addr_spec=letter.to_email)
    message["Subject"] = letter.subject
    message["Date"] = letter.date
    message["Message-ID"] = message_id
    message["List-Id"] = f"{letter.list_name} <{letter.list_id}>"
    mailto = letter.unsubscribe_mailto or "unsubscribe@" + address.rpartition("@")[2]
    message["List-Unsubscribe"] = (
        f"<{letter.unsubscribe_url}>, <mailto:{mailto}?subject=unsubscribe>"
    )
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(letter.text)
    message.add_alternative(letter.html, subtype="html")
    return message.as_bytes()


def body_text(message: EmailMessage, subtype: str) -> str:
    """The decoded text of the message's `subtype` part, with LF line ends."""
    part = message.get_body((subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def test_parts_are_plain_text_then_html_in_utf8() -> None:
    """A multipart/alternative of text/plain then text/html, both UTF-8, carrying the letter."""
    message = parse(build_message(LETTER))
    assert message.get_content_type() == "multipart/alternative"
    parts = list(message.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert [part.get_content_charset() for part in parts] == ["utf-8", "utf-8"]
    assert body_text(message, "plain") == LETTER.text
    assert body_text(message, "html") == LETTER.html
    assert message.defects == []
    assert all(part.defects == [] for part in parts)


def test_list_headers_offer_one_click_https_and_mailto() -> None:
    """List-Id, List-Unsubscribe (https, then mailto) and the RFC 8058 one-click header."""
    message = parse(build_message(LETTER))
    assert message["List-Id"] == "Daily digest <daily.en.site.example>"
    assert re.findall(r"<([^>]+)>", str(message["List-Unsubscribe"])) == [
        "https://site.example/unsubscribe/tok.EN-123_x",
        "mailto:unsubscribe@site.example?subject=unsubscribe",
    ]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    other = parse(build_message(replace(LETTER, unsubscribe_mailto="leave@lists.example")))
    assert "<mailto:leave@lists.example?subject=unsubscribe>" in str(other["List-Unsubscribe"])


def test_every_header_appears_once_in_order() -> None:
    """From, To, Subject, Date, Message-ID, the list headers and MIME headers, once each."""
    message = parse(build_message(LETTER))
    assert tuple(message.keys()) == HEADERS
    assert message["Date"] == "Tue, 24 Nov 2026 07:30:00 +0330"
    assert message["MIME-Version"] == "1.0"


def test_message_ids_are_unique_and_at_the_senders_domain() -> None:
    """Each build gets its own random Message-ID, at the From domain unless told otherwise."""
    ids = {str(parse(build_message(LETTER))["Message-ID"]) for _ in range(2000)}
    assert len(ids) == 2000
    assert all(re.fullmatch(r"<[0-9a-f]{32}@site\.example>", one) for one in ids)
    elsewhere = parse(build_message(replace(LETTER, message_id_domain="mail.site.example")))
    assert str(elsewhere["Message-ID"]).endswith("@mail.site.example>")
    given = parse(build_message(replace(LETTER, message_id="<edition-1.42@site.example>")))
    assert given["Message-ID"] == "<edition-1.42@site.example>"


@pytest.mark.parametrize(
    "letter",
    [
        LETTER,
        ARABIC,
        PERSIAN,
        replace(LETTER, to_name='Smith, "Jo" (editor)', subject="Re: =?not-a-word?= x"),
        replace(LETTER, to_name="", subject=("Ünïcödé in a mostly English subject " * 4).strip()),
        replace(LETTER, to_name="José Ñúñez O'Brien-Smith", list_name="Résumé quotidien"),
        replace(LETTER, text="no final newline", html="<p>one</p>"),
        replace(LETTER, text="", html=""),
        replace(LETTER, text="x" * 3000 + "\n" + "=" * 200 + "\n", html="é" * 3000),
        replace(LETTER, text="\tindented\n  two  spaces  \n.\n.leading dot\nend   \n"),
        replace(LETTER, subject="word" * 40, to_name="N" * 90),
    ],
    ids=[
        "english",
        "arabic",
        "persian",
        "specials",
        "long-subject",
        "accents",
        "no-newline",
        "empty",
        "long-lines",
        "whitespace",
        "long-words",
    ],
)
def test_same_meaning_as_email_message(letter: Letter) -> None:
    """Parsed, the fast build and email.message's build have equal headers and parts."""
    ours = parse(build_message(replace(letter, message_id="<fixed.1@site.example>")))
    theirs = parse(reference(letter, "<fixed.1@site.example>"))
    for name in HEADERS[:-1]:
        assert str(ours[name]) == str(theirs[name]), name
    for field in ("From", "To"):
        assert ours[field].addresses == theirs[field].addresses
    ours_parts, their_parts = list(ours.iter_parts()), list(theirs.iter_parts())
    assert [p.get_content_type() for p in ours_parts] == [p.get_content_type() for p in their_parts]
    assert [p.get_content_charset() for p in ours_parts] == ["utf-8", "utf-8"]
    for subtype in ("plain", "html"):
        assert body_text(ours, subtype) == body_text(theirs, subtype)
    assert ours.defects == []
    assert all(part.defects == [] for part in ours_parts)


@pytest.mark.parametrize("letter", [ARABIC, PERSIAN], ids=["arabic", "persian"])
def test_non_ascii_subject_and_names_are_encoded_words(letter: Letter) -> None:
    """Arabic and Persian subjects and names travel as RFC 2047 words and read back exactly."""
    raw = build_message(letter)
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    assert b"=?utf-8?b?" in head
    message = parse(raw)
    assert message["Subject"] == letter.subject
    assert message["To"].addresses[0].display_name == letter.to_name
    from_name = parseaddr(letter.from_address)[0]
    assert message["From"].addresses[0].display_name == from_name


@pytest.mark.parametrize(
    "name",
    [
        "محمد بن عبد الله العراقي الموسوي الحسيني",
        "زهرا\u200cسادات محمدی فرد کرمانشاهی اصفهانی",
        "N" * 30 + "é" + "N" * 60,
    ],
)
def test_long_non_ascii_names_span_several_encoded_words(name: str) -> None:
    """A long name becomes several encoded words that an RFC 2047 decoder joins exactly.

    (The email package's modern parser puts a space between such words in a display name,
    for email.message's own output too, so the legacy decoder, which follows the RFC, reads.)
    """
    raw = build_message(replace(LETTER, to_name=name))
    to = re.search(rb"^To: (.*?)\r\n(?! )", raw, re.MULTILINE | re.DOTALL)
    assert to is not None
    folded = to.group(1).decode("ascii")
    assert folded.count("=?utf-8?b?") > 1
    assert all(len(line) <= 78 for line in folded.split("\r\n"))
    assert str(make_header(decode_header(folded))) == f"{name} <reader@example.org>"


def test_arabic_bodies_are_base64_and_english_quoted_printable() -> None:
    """Mostly-ASCII text is quoted-printable; Arabic is base64, the shorter of the two."""
    english, arabic = build_message(LETTER), build_message(ARABIC)
    assert english.count(b"Content-Transfer-Encoding: quoted-printable") == 2
    assert arabic.count(b"Content-Transfer-Encoding: base64") == 2


@pytest.mark.parametrize(
    "hostile",
    [
        "Hello\r\nBcc: victim@example.org",
        "Hello\nBcc: victim@example.org",
        "Hello\rBcc: victim@example.org",
        "Hello\r\n\r\nbody & text",
        "Hello\x00\x1b\x7f\x85Bcc: victim@example.org",
        "Hello\u2028Bcc: victim@example.org\u2029",
        "=?utf-8?q?Hello=0D=0ABcc=3A_victim=40example.org?=",
    ],
)
@pytest.mark.parametrize("field", ["subject", "to_name", "list_name", "from_address"])
def test_header_injection_through_text_is_neutralised(field: str, hostile: str) -> None:
    """Control characters in titles and names never start a header or end the header block."""
    value = f'"{hostile}" <news@site.example>' if field == "from_address" else hostile
    raw = build_message(replace(LETTER, **{field: value}))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert re.findall(rb"^[^ \r\n][^:]*:", head, re.MULTILINE) == [
        name.encode() + b":" for name in HEADERS
    ]
    message = parse(raw)
    assert message["Bcc"] is None
    decoded = " ".join(str(message[name]) for name in HEADERS)
    assert not re.search("[\x00-\x1f\x7f-\x9f\u2028\u2029]", decoded)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("to_email", "reader@example.org\r\nBcc: victim@example.org"),
        ("to_email", "reader@example.org>, victim@example.org"),
        ("to_email", "two words@example.org"),
        ("to_email", "reader@exa mple.org"),
        ("to_email", "=?utf-8?q?r=0D=0ABcc:_v@example.org?=@example.org"),
        ("to_email", "reader..dots@example.org"),
        ("to_email", "reader@-example.org"),
        ("to_email", "réader\u200b@example.org"),
        ("feedback_id", "a:b\r\nBcc: victim@example.org"),
        ("feedback_id", "a:b:c:d:e"),
        ("to_email", "no-at-sign"),
        ("unsubscribe_url", "https://site.example/u\r\nBcc: victim@example.org"),
        ("unsubscribe_url", "https://site.example/u>, <https://evil.example/"),
        ("unsubscribe_url", "javascript:alert(1)"),
        ("unsubscribe_url", "https://site.example/a b"),
        ("unsubscribe_mailto", "leave@site.example?subject=x\r\nBcc: v@example.org"),
        ("list_id", "daily list.site.example"),
        ("list_id", "daily>.site.example"),
        ("message_id", "<a@b.example>\r\nBcc: victim@example.org"),
        ("message_id_domain", "site.example>\r\nBcc: x"),
        ("from_address", "News <news@site.example\r\nBcc: victim@example.org>"),
        ("date", datetime(2026, 11, 24, 7, 30)),  # naive: the point
    ],
)
def test_unsafe_addresses_urls_and_ids_are_refused(field: str, value: object) -> None:
    """Addresses, URLs, ids and dates of the wrong shape raise MessageError, never pass."""
    with pytest.raises(MessageError):
        build_message(replace(LETTER, **{field: value}))


@pytest.mark.parametrize("letter", [LETTER, ARABIC, PERSIAN], ids=["en", "ar", "fa"])
def test_lines_are_crlf_and_short(letter: Letter) -> None:
    """CRLF line ends only; header lines within 78 where a space allows, body lines within 76."""
    long_subject = replace(letter, subject=letter.subject * 3, text=letter.text * 20)
    raw = build_message(long_subject)
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert max(len(line) for line in head.split(b"\r\n")) <= 78
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


def test_bodies_keep_the_message_bytes_promise() -> None:
    """Any text gives DKIM-canonical bodies: no tabs, no two spaces, no leading dots."""
    chooser = random.Random(5)
    alphabet = "  \t\t..=é\u200cب ab\n\r"
    for _ in range(300):
        text = "".join(chooser.choice(alphabet) for _ in range(chooser.randint(0, 400)))
        raw = build_message(replace(LETTER, text=text, html=text.upper()))
        assert isinstance(raw, MessageBytes)
        body = raw.split(b"\r\n\r\n", 1)[1]
        assert b"\t" not in body
        assert b"  " not in body
        assert b" \r\n" not in body
        assert not any(line.startswith(b".") for line in raw.split(b"\r\n"))
        expected = text.replace("\r\n", "\n").replace("\r", "\n")
        expected += "" if expected.endswith("\n") else "\n"
        assert body_text(parse(raw), "plain") == expected


# Names and addresses: whatever they hold, the header set stays and they read back ----------

NOTICE_HEADERS = (
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "MIME-Version",
    "Content-Type",
)
# Characters that have broken headers somewhere: line breaks of every kind, NUL, quotes,
# escapes, the specials of an address list, and the makings of an encoded word.
AWKWARD = [
    *'\r\n\x00\t"\\,;:<>()[]@.=?_ ',
    "\u2028", "\u2029", "\u0085", "\x0b", "\x1c", "\ud800", "é", "ب", "\u200c", "=?", "?=",
    "=?utf-8?q?", "=0D=0A", "Bcc: x@evil.example", "=?utf-8?b?DQo=?=",
]  # fmt: skip
NAMES = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(AWKWARD) | st.text(max_size=3), max_size=40).map("".join),
    st.builds(
        "=?{}?{}?{}?=".format,
        st.sampled_from(["utf-8", "UTF-8", "iso-8859-1", "x-unknown", "utf-8*en"]),
        st.sampled_from("bBqQ"),
        st.text(st.sampled_from("=0DA_ :Bcc@xe"), max_size=30),
    ),
)


def sanitised(name: str) -> str:
    """A name as a header may show it: its first 256 characters, controls as spaces, on one line."""
    spaced = re.sub("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]", " ", name[:256])
    return re.sub(" {2,}", " ", spaced).strip(" ")


def assert_reads_back(raw: bytes, names: tuple[str, ...], to: str, name: str, text: str) -> None:
    """Exactly the header fields `names`, one recipient `to` named `name`, the body `text`."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert re.findall(rb"^([^ \r\n][^:]*):", head, re.MULTILINE) == [n.encode() for n in names]
    message = read_back(raw)
    assert tuple(message.keys()) == names
    [recipient] = message["To"].addresses
    assert recipient.addr_spec == to
    assert shown_name(raw, "To") == name
    [sender] = message["From"].addresses
    assert sender.addr_spec == "news@site.example"
    assert body_text(message, "plain") == text


@given(name=NAMES)
def test_no_name_changes_the_header_set_and_each_reads_back_as_itself(name: str) -> None:
    """Any display name: the same header fields, one recipient, the name as its sanitised text.

    A name that looks like an encoded word is encoded itself, so it reads back as written.
    """
    for to in ("reader@example.org", "رضا@example.org"):
        letter = replace(LETTER, to_name=name, to_email=to)
        assert_reads_back(build_message(letter), HEADERS, to, sanitised(name), LETTER.text)
        notice = Notice(
            from_address=LETTER.from_address,
            to_email=to,
            to_name=name,
            subject="Confirm",
            text=f"Hello {name},\n",
            html="<p>Hello</p>",
        )
        text = f"Hello {name},\n".replace("\r\n", "\n").replace("\r", "\n")
        text = text.encode("utf-8", "replace").decode()  # a lone surrogate is no character
        assert_reads_back(build_notice(notice), NOTICE_HEADERS, to, sanitised(name), text)


LOCALS = st.lists(
    st.text(st.sampled_from([*"abz09+'/{}|~!#$%&*=^_`-", "ü", "ب", "ω", "é"]), min_size=1),
    min_size=1,
    max_size=3,
).map(".".join)
DOMAINS = st.sampled_from(
    ["example.org", "exämple.org", "xn--exmple-cua.org", "موقع.example", "-x.org", "x..org"]
)


@st.composite
def spoilt(draw: st.DrawFn) -> str:
    """A usable address with something awkward put in at some place."""
    address = draw(st.builds("{}@{}".format, LOCALS, DOMAINS))
    at = draw(st.integers(0, len(address)))
    return address[:at] + draw(st.sampled_from(AWKWARD)) + address[at:]


ADDRESSES = st.one_of(st.builds("{}@{}".format, LOCALS, DOMAINS), spoilt(), st.text(max_size=80))


@given(to=ADDRESSES)
def test_an_address_is_refused_or_reads_back_as_the_one_recipient(to: str) -> None:
    """Any address: MessageError, or the same header set and exactly that one recipient."""
    try:
        raw = build_message(replace(LETTER, to_email=to))
    except MessageError:
        assert not re.fullmatch(r"[A-Za-z0-9+'/]+@example\.org", to)  # plain ones never fail
        return
    head = raw.split(b"\r\n\r\n", 1)[0]
    local, _, domain = to.rpartition("@")
    assert not re.search(r'[\s<>(),;:\\"\[\]@]', local)
    assert not any(unicodedata.category(char)[0] in "CZ" for char in local)
    to_ascii = domain if domain.isascii() else idna.encode(domain, uts46=True).decode()
    assert_reads_back(raw, HEADERS, f"{local}@{to_ascii}", LETTER.to_name, LETTER.text)
    assert head.isascii() == local.isascii()  # UTF-8 in the header only for a UTF-8 address


def test_an_idn_domain_is_written_in_a_labels_and_needs_no_utf8() -> None:
    """An address with an IDN domain and an ASCII local part has a pure ASCII header."""
    raw = build_message(replace(LETTER, to_email="reader@exämple.org"))
    assert raw.split(b"\r\n\r\n", 1)[0].isascii()
    assert parse(raw)["To"].addresses[0].addr_spec == "reader@xn--exmple-cua.org"


def test_a_utf8_local_part_is_the_one_utf8_thing_in_the_header() -> None:
    """An internationalised address is written in UTF-8 (RFC 6532); all else stays ASCII."""
    raw = build_message(replace(ARABIC, to_email="رضا@exämple.org"))
    head = raw.split(b"\r\n\r\n", 1)[0]
    [utf8_line] = [line for line in head.split(b"\r\n") if not line.isascii()]
    assert utf8_line.endswith(" <رضا@xn--exmple-cua.org>".encode())
    message = read_back(raw)
    assert message["To"].addresses[0].addr_spec == "رضا@xn--exmple-cua.org"
    assert message["To"].addresses[0].display_name == ARABIC.to_name
    assert message["Subject"] == ARABIC.subject


def test_a_notice_has_no_list_headers_and_says_it_is_automatic() -> None:
    """A confirmation-style notice: From, To, Subject, Date, Message-ID, Auto-Submitted."""
    notice = Notice(
        from_address=LETTER.from_address,
        to_email="reader@example.org",
        to_name='Ada "Ace" <Lovelace>',
        subject="Confirm your subscription",
        text="Hello,\n",
        html="<p>Hello</p>\n",
        date=WHEN,
    )
    message = parse(build_notice(notice))
    assert tuple(message.keys()) == NOTICE_HEADERS
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["To"].addresses[0].display_name == 'Ada "Ace" <Lovelace>'
    assert body_text(message, "html") == "<p>Hello</p>\n"


@pytest.mark.parametrize("value", ["", "daily:en:digest:syndicate", "syndicate"])
def test_feedback_id_appears_exactly_when_set(value: str, key: rsa.RSAPrivateKey) -> None:
    """A Feedback-ID header when one is given, none otherwise; DKIM covers it when present."""
    letter = replace(LETTER, feedback_id=value)
    notice = Notice(LETTER.from_address, "r@example.org", "s", "t", "h", feedback_id=value)
    for raw, names in ((build_message(letter), HEADERS), (build_notice(notice), NOTICE_HEADERS)):
        message = parse(raw)
        expected = [*names[:-2], "Feedback-ID", *names[-2:]] if value else list(names)
        assert list(message.keys()) == expected
        assert message.get_all("Feedback-ID", []) == ([value] if value else [])
    signed = signer(key).sign(build_message(letter))
    assert "feedback-id" in tags(signed)["h"].split(":")
    assert verify(signed, key)
    if value:
        forged = signed.replace(f"Feedback-ID: {value}".encode(), b"Feedback-ID: x:evil")
        assert not verify(forged, key)


# Body templates: encoded once, filled per recipient --------------------------------------

SLOTS = ("%%greeting-1%%", "%%unsubscribe-1%%", "%%preferences-1%%")
TEMPLATE_TEXT = (
    "Site\nDaily digest\n\n%%greeting-1%%\n\n.A line that starts with a dot\n"
    + "A long line of news, " * 20
    + "\nManage your preferences: %%preferences-1%%\nUnsubscribe: %%unsubscribe-1%%\n"
)
TEMPLATE_HTML = (
    '<html><body><div style="color:#1f1d1a;">%%greeting-1%%</div>'
    + "<p>Editor&#39;s choice &nbsp;·&nbsp; a story</p>" * 60
    + '<a href="%%preferences-1%%">Preferences</a> · <a href="%%unsubscribe-1%%">Unsubscribe</a>'
    + "</body></html>\n"
)
URL = "https://site.example/subscribe/unsubscribe?token=AgIDaSX3wAmVdZQgvpr_8BQT&lang=en"


def filled(text: str, values: tuple[str, ...]) -> str:
    """`text` with each slot replaced by its value."""
    for slot, value in zip(SLOTS, values, strict=True):
        text = text.replace(slot, value)
    return text


def templated(letter: Letter, text: str, html: str, values: tuple[str, ...]) -> MessageBytes:
    """The letter built from `text` and `html` encoded once as templates, filled with `values`."""
    bodies = (BodyTemplate(text, SLOTS).fill(values), BodyTemplate(html, SLOTS).fill(values))
    return build_message(replace(letter, text="", html=""), bodies=bodies)


@pytest.mark.parametrize(
    "values",
    [
        ("Hello Sara,", URL, URL.replace("unsubscribe", "preferences")),
        ("Hello José Ñúñez O&#39;Brien,", URL.replace("&", "&amp;"), ""),
        (".Hello", "=", "  two  spaces\tand a tab "),
        ("x" * 300, "é" * 9 + "y" * 90, "%%unsubscribe-1%%"),
        ("", "", ""),
    ],
    ids=["english", "escaped", "awkward", "long", "empty"],
)
def test_a_filled_template_reads_as_the_filled_text(values: tuple[str, ...]) -> None:
    """Parsed, a message of filled templates has exactly the text and HTML, values in place."""
    raw = templated(LETTER, TEMPLATE_TEXT, TEMPLATE_HTML, values)
    message = parse(raw)
    assert body_text(message, "plain") == filled(TEMPLATE_TEXT, values)
    assert body_text(message, "html") == filled(TEMPLATE_HTML, values)
    assert message.defects == []
    assert raw.count(b"Content-Transfer-Encoding: quoted-printable") == 2
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76
    assert b"\t" not in body
    assert b"  " not in body
    assert b" \r\n" not in body
    assert not any(line.startswith(b".") for line in raw.split(b"\r\n"))


def test_recipients_share_every_encoded_line_but_their_own() -> None:
    """Two fills differ only on the lines that hold their own values."""
    template = BodyTemplate(TEMPLATE_HTML, SLOTS)
    sara = template.fill(("Hello Sara,", URL, URL)).data.split(b"\r\n")
    dana = template.fill(("Hello Dana,", URL.replace("AgID", "BgID"), URL)).data.split(b"\r\n")
    assert len(sara) == len(dana)
    differing = [
        number for number, (one, two) in enumerate(zip(sara, dana, strict=True)) if one != two
    ]
    assert len(differing) == 2
    assert b"Sara" in sara[differing[0]]
    assert b"AgID" in sara[differing[1]]


@pytest.mark.parametrize(
    ("text", "values"),
    [
        (
            '<div dir="rtl">%%greeting-1%%</div><p>اختيار المحرر</p>\n' * 30,
            ("مرحبًا علي،", URL, URL),
        ),
        ("Hello %%greeting-1%%\n%%unsubscribe-1%%", ("a\nline break", URL, URL)),
        ("No line break at the end: %%preferences-1%%", ("Hello,", URL, "")),
    ],
    ids=["arabic", "value-with-line-break", "empty-value-at-the-end"],
)
def test_a_template_falls_back_to_encoding_the_filled_text_as_build_message_does(
    text: str, values: tuple[str, ...]
) -> None:
    """Base64 bodies, and values that change the lines, give the bytes build_message gives."""
    fixed = replace(LETTER, message_id="<fixed.1@site.example>")
    by_template = templated(fixed, text, text, values)
    whole = build_message(replace(fixed, text=filled(text, values), html=filled(text, values)))
    assert by_template == whole


def test_random_templates_keep_the_message_bytes_promise() -> None:
    """Any text and values give canonical, decodable bodies equal to the text filled in."""
    chooser = random.Random(11)
    alphabet = [
        " ",
        "  ",
        "\t",
        ".",
        "=",
        "é",
        "\u200c",
        "ب",
        "\n",
        "\r\n",
        "\r",
        "a",
        "b" * 80,
        *SLOTS,
    ]
    for _ in range(300):
        text = "".join(chooser.choice(alphabet) for _ in range(chooser.randint(0, 40)))
        values = tuple(
            "".join(chooser.choice(" .=éa") for _ in range(chooser.randint(0, 90))) for _ in SLOTS
        )
        raw = templated(LETTER, text, text.upper(), values)
        assert isinstance(raw, MessageBytes)
        body = raw.split(b"\r\n\r\n", 1)[1]
        assert b"\t" not in body
        assert b"  " not in body
        assert b" \r\n" not in body
        assert max(len(line) for line in body.split(b"\r\n")) <= 76
        assert not any(line.startswith(b".") for line in raw.split(b"\r\n"))
        expected = filled(text, values).replace("\r\n", "\n").replace("\r", "\n")
        expected += "" if expected.endswith("\n") else "\n"
        assert body_text(parse(raw), "plain") == expected


def test_a_template_needs_slots_and_a_letter_one_set_of_bodies() -> None:
    """No template without slots; a letter with text cannot take encoded bodies as well."""
    with pytest.raises(ValueError, match="slot"):
        BodyTemplate("text", ())
    with pytest.raises(ValueError, match="slot"):
        BodyTemplate("text", ("",))
    body = BodyTemplate("%%greeting-1%%", SLOTS[:1]).fill(("Hello,",))
    with pytest.raises(MessageError, match="not both"):
        build_message(LETTER, bodies=(body, body))


# DKIM ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key for the test module."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey, form: serialization.PrivateFormat) -> bytes:
    """The private key as unencrypted PEM."""
    return key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption())


def verify(message: bytes, key: rsa.RSAPrivateKey) -> bool:
    """The verdict of dkimpy, the selector's TXT record answered with the key's public half."""
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)

    def txt(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == b"syndicate._domainkey.site.example." else None

    return bool(dkim.verify(message, dnsfunc=txt))


def signer(key: rsa.RSAPrivateKey) -> DkimSigner:
    """A signer for site.example with selector `syndicate`."""
    return DkimSigner("site.example", "syndicate", pem(key, serialization.PrivateFormat.PKCS8))


def tags(message: bytes) -> dict[str, str]:
    """The DKIM-Signature header's tags, unfolded."""
    value = str(parse(message)["DKIM-Signature"])
    pairs = (part.split("=", 1) for part in re.sub(r"\s+", "", value).split(";") if part)
    return {name: tag for name, tag in pairs}


@pytest.mark.parametrize(
    "letter",
    [LETTER, ARABIC, PERSIAN, replace(PERSIAN, to_email="زهرا@xn--mgbh0fb.example")],
    ids=["en", "ar", "fa", "fa-utf8-address"],
)
def test_dkim_signature_verifies_and_covers_list_unsubscribe(
    letter: Letter, key: rsa.RSAPrivateKey
) -> None:
    """Signed messages pass dkimpy's verification; h= covers the one-click headers."""
    signed = signer(key).sign(build_message(letter))
    assert isinstance(signed, MessageBytes)
    assert verify(signed, key)
    found = tags(signed)
    assert (found["a"], found["c"], found["d"], found["s"]) == (
        "rsa-sha256",
        "relaxed/relaxed",
        "site.example",
        "syndicate",
    )
    signed_names = found["h"].split(":")
    for name in HEADERS:
        assert name.lower() in signed_names


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"<https://site.example/unsubscribe/", b"<https://evil.example/unsubscribe/"),
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x=y"),
        (b"Daily digest: Iraq", b"Daily digest: Iran"),
        (b"Editor's Choice", b"Editor's Chosen"),
    ],
)
def test_dkim_fails_when_signed_content_changes(
    old: bytes, new: bytes, key: rsa.RSAPrivateKey
) -> None:
    """Changing a covered header or the body breaks the signature."""
    signed = signer(key).sign(build_message(replace(LETTER, html=LETTER.html.replace("'", ""))))
    assert old in signed
    assert not verify(signed.replace(old, new, 1), key)


@pytest.mark.parametrize(
    "added", [b"From: Evil <evil@example.org>\r\n", b"List-Unsubscribe: <https://e.example/>\r\n"]
)
def test_dkim_fails_when_a_second_covered_header_is_added(
    added: bytes, key: rsa.RSAPrivateKey
) -> None:
    """Oversigning: a second From or List-Unsubscribe added on the way breaks the signature."""
    signed = signer(key).sign(build_message(LETTER))
    head, body = signed.split(b"\r\n\r\n", 1)
    assert not verify(head + b"\r\n" + added + b"\r\n" + body, key)


def test_dkim_signs_any_message_bytes(key: rsa.RSAPrivateKey) -> None:
    """Plain bytes with LF line ends, tabs and runs of spaces are signed correctly too."""
    raw = (
        b"From: news@site.example\nTo: reader@example.org\nSubject: hi\n"
        b"Date: Tue, 24 Nov 2026 07:30:00 +0000\nMessage-ID: <1@site.example>\n\n"
        b"two  spaces\tand a tab  \n\n\n"
    )
    assert verify(signer(key).sign(raw), key)
    crlf = raw.replace(b"\n", b"\r\n")
    assert verify(signer(key).sign(crlf), key)


def test_dkim_from_settings(tmp_path: Path, key: rsa.RSAPrivateKey) -> None:
    """No signer without a domain; a signer from a readable key file; verifiable output."""
    assert DkimSigner.from_settings(DkimSettings()) is None
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(pem(key, serialization.PrivateFormat.TraditionalOpenSSL))
    made = DkimSigner.from_settings(DkimSettings(domain="site.example", key_file=key_file))
    assert made is not None
    assert verify(made.sign(build_message(LETTER)), key)


def test_dkim_key_problems_name_the_file(tmp_path: Path) -> None:
    """A missing, unreadable or wrong key file is a DkimKeyError naming it."""
    missing = tmp_path / "missing.pem"
    with pytest.raises(DkimKeyError, match=r"missing\.pem"):
        DkimSigner.from_settings(DkimSettings(domain="site.example", key_file=missing))
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(DkimKeyError, match=r"garbage\.pem.*PEM"):
        DkimSigner.from_settings(DkimSettings(domain="site.example", key_file=garbage))
    with pytest.raises(DkimKeyError, match="key_file"):
        DkimSigner.from_settings(DkimSettings(domain="site.example"))


@pytest.mark.parametrize(
    ("domain", "selector"), [("site.example; x=y", "s"), ("site.example", "a b")]
)
def test_dkim_refuses_domains_and_selectors_that_would_break_the_header(
    domain: str, selector: str, key: rsa.RSAPrivateKey
) -> None:
    """A d= or s= value with separators or spaces is refused."""
    with pytest.raises(DkimKeyError):
        DkimSigner(domain, selector, pem(key, serialization.PrivateFormat.PKCS8))


def test_build_date_defaults_to_now() -> None:
    """Without a date the message is dated now."""
    message = parse(build_message(replace(LETTER, date=None)))
    moment = message["Date"].datetime
    assert abs(datetime.now(UTC) - moment) < timedelta(minutes=1)
