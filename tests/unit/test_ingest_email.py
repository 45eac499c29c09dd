"""Inbound email: RFC 5322 messages parsed with the standard library."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from socialcrm import contract
from socialcrm.v1 import common_pb2
from socialcrm_ingest.formats import email_inbound
from socialcrm_ingest.formats.email_inbound import normalize_email, strip_quoted
from socialcrm_ingest.formats.html_text import html_to_text
from socialcrm_ingest.formats.payload import PayloadError
from socialcrm_ingest.formats.registry import normalizers
from socialcrm_ingest.security.limits import EMAIL_SUBJECT_MAX, EMAIL_TEXT_MAX, EMAIL_TRUNCATED
from socialcrm_ingest.security.mail_verdict import VERDICT_HEADER, signed_verdict
from socialcrm_ingest.security.mime_bounds import BODY_SOURCE_MAX
from tests.fixtures.payloads import FIXTURES

NOW = datetime(2026, 11, 16, 10, 0, tzinfo=UTC)
REPLY = (FIXTURES / "email" / "reply.eml").read_bytes()

HTML_ONLY = b"""From: jordan@example.com
Subject: Broken blender
Date: Mon, 16 Nov 2026 09:00:00 +0000
Message-ID: <first@example.com>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="b1"

--b1
Content-Type: text/html; charset="utf-8"

<p>My blender arrived <b>broken</b> &amp; nobody answers.</p>
--b1--
"""


def test_a_reply_is_a_private_email_in_the_thread_of_its_first_message() -> None:
    [mail] = normalize_email(REPLY, "acme", NOW)
    assert mail.header.channel == common_pb2.CHANNEL_EMAIL
    assert mail.header.external_id == "CAF=reply-48213.2@mail.example.fr"
    assert mail.header.event_id == contract.event_id_for(
        common_pb2.CHANNEL_EMAIL, "CAF=reply-48213.2@mail.example.fr"
    )
    assert mail.header.occurred_at.ToDatetime(tzinfo=UTC) == datetime(
        2026, 11, 16, 9, 2, 17, tzinfo=UTC
    )
    assert mail.conversation_id == "order-48213.0@acme.example"
    assert mail.in_reply_to == "ticket-48213.1@acme.example"
    assert not mail.is_public
    assert mail.kind == "email"
    assert mail.author.handle == "camille.martin@example.fr"
    assert mail.author.display_name == "Camille Martin"
    assert mail.language_hint == "fr"
    assert mail.text.startswith("Re: Votre commande #48213\n\nBonjour,")
    assert "inadmissible" in mail.text
    assert "en cours de livraison" not in mail.text
    assert "a écrit" not in mail.text
    contract.validate(mail)


def test_the_same_message_as_text_gives_the_same_event() -> None:
    [from_bytes] = normalize_email(REPLY, "acme", NOW)
    [from_text] = normalize_email(REPLY.decode(), "acme", NOW)
    assert from_bytes.header.event_id == from_text.header.event_id
    assert from_bytes.text == from_text.text


def test_an_html_only_message_is_read_as_text_and_starts_its_own_thread() -> None:
    [mail] = normalize_email(HTML_ONLY, "acme", NOW)
    assert "My blender arrived  broken  & nobody answers." in mail.text
    assert mail.conversation_id == "first@example.com"
    assert mail.in_reply_to == ""
    assert mail.language_hint == ""


def test_quoted_lines_and_their_attribution_are_cut() -> None:
    text = "Still nothing.\n\nOn Mon, 16 Nov 2026, Acme <s@acme.example> wrote:\n> We shipped it."
    assert strip_quoted(text) == "Still nothing."


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (REPLY.replace(b"Message-ID: <CAF=reply-48213.2@mail.example.fr>\r\n", b""), "Message-ID"),
        (REPLY.replace(b'From: "Camille Martin" <Camille.Martin@example.fr>\r\n', b""), "From"),
        (REPLY.replace(b"Date: Mon, 16 Nov 2026 10:02:17 +0100", b"Date: yesterday"), "Date"),
    ],
)
def test_messages_without_their_identifying_headers_are_refused(
    message: bytes, reason: str
) -> None:
    with pytest.raises(PayloadError, match=reason):
        normalize_email(message, "acme", NOW)


def test_a_json_object_is_not_a_message() -> None:
    with pytest.raises(PayloadError, match="not an RFC 5322 message"):
        normalize_email({"from": "a@b.c"}, "acme", NOW)


def nested(levels: int) -> bytes:
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(levels)
    )
    return (
        b"From: jordan@example.com\nMessage-ID: <deep@example.com>\n"
        + opening
        + b"Content-Type: text/plain\n\nhello\n"
    )


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (nested(1_000), "1000 multipart or message parts, over the limit of 32"),
        (nested(12), "nested more than 10 levels deep"),
        (
            b"From: a@example.com\nMessage-ID: <m@example.com>\nContent-Type: multipart/mixed; "
            b'boundary="b"\n\n' + b"--b\n\nx\n" * 5_000,
            "more than 100 MIME parts",
        ),
    ],
    ids=["many-containers", "too-deep", "too-many-parts"],
)
def test_mime_structures_out_of_bounds_are_refused_naming_the_limit(
    message: bytes, reason: str
) -> None:
    with pytest.raises(PayloadError, match=reason):
        normalize_email(message, "acme", NOW)


def test_a_structure_within_bounds_is_read() -> None:
    [mail] = normalize_email(nested(5), "acme", NOW)
    assert mail.text == "hello"


def test_a_long_body_is_cut_with_a_marker_rather_than_refused() -> None:
    message = (
        b"From: jordan@example.com\nMessage-ID: <long@example.com>\nSubject: "
        + b"s" * 2_000
        + b"\n\n"
        + b"word " * 20_000
    )
    [mail] = normalize_email(message, "acme", NOW)
    subject, body = mail.text.split("\n\n", 1)
    assert len(subject) == EMAIL_SUBJECT_MAX
    assert body.endswith(EMAIL_TRUNCATED)
    assert len(body) == EMAIL_TEXT_MAX + len(EMAIL_TRUNCATED)


def test_a_date_out_of_range_is_refused_naming_the_header() -> None:
    message = (
        b"From: a@example.com\nMessage-ID: <d@example.com>\n"
        b"Date: Fri, 31 Dec 9999 00:00:00 +0000\n\nhi\n"
    )
    with pytest.raises(PayloadError, match=r"^Date "):
        normalize_email(message, "acme", NOW)


# Issue 25, finding 1: HTML that made the tag-stripping regex quadratic, and its kin that make
# Python 3.11's html.parser quadratic (unclosed tags, comments, processing instructions).
HOSTILE_HTML = {
    "lone-lt": "<",
    "unclosed-tags": "<a ",
    "unclosed-attribute": "<a b='",
    "unclosed-comments": "<!--",
    "processing-instructions": "<?",
    "end-tags": "</",
    "ampersands": "&",
    "entities": "&#",
    "named-entities": "&amp",
}


def html_message(body: str, message_id: str = "hostile@example.com") -> bytes:
    return (
        f"From: a@example.com\nMessage-ID: <{message_id}>\nMIME-Version: 1.0\n"
        "Content-Type: text/html; charset=utf-8\n\n"
    ).encode() + body.encode()


def growth(work: Callable[[str], object], unit: str, size: int) -> float:
    """How many times longer ``work`` takes on 4 times the input: 4 when linear, 16 when
    quadratic. CPU time of this thread, the least of a few runs, sizes alternated: what the
    work needs, not what the machine's other load adds. Both inputs stay small enough to sit
    in the CPU's caches, which would otherwise add a step of their own to the ratio."""
    small = unit * (size // len(unit))
    large = unit * (4 * size // len(unit))
    best = {small: float("inf"), large: float("inf")}
    for _ in range(5):
        for text in (small, large):
            started = time.thread_time()
            work(text)
            best[text] = min(best[text], time.thread_time() - started)
    return best[large] / max(best[small], 1e-9)


@pytest.mark.parametrize("unit", HOSTILE_HTML.values(), ids=HOSTILE_HTML.keys())
def test_hostile_html_costs_time_linear_in_its_length(unit: str) -> None:
    # Both sizes are under BODY_SOURCE_MAX: this is the parse itself, not the cut.
    ratio = growth(lambda body: normalize_email(html_message(body), "acme", NOW), unit, 16_384)
    # Linear work gives 4 (less with the fixed cost of the headers), quadratic 16.
    assert ratio < 9, f"4 times the input took {ratio:.1f} times as long"


@pytest.mark.parametrize("unit", HOSTILE_HTML.values(), ids=HOSTILE_HTML.keys())
def test_html_to_text_costs_time_linear_in_its_length(unit: str) -> None:
    ratio = growth(html_to_text, unit, 16_384)
    assert ratio < 9, f"4 times the input took {ratio:.1f} times as long"


# The other patterns that read what a sender wrote: the attribution line of a quote (one
# long last line), the quoted lines, and the Message-ID list.
HOSTILE_PLAIN = {
    "attribution": "On wrote  ",
    "attribution-colons": "Le a écrit : ",
    "quoted-lines": ">\n",
    "blank-lines": "\n",
}


@pytest.mark.parametrize("unit", HOSTILE_PLAIN.values(), ids=HOSTILE_PLAIN.keys())
def test_hostile_plain_text_costs_time_linear_in_its_length(unit: str) -> None:
    def read(body: str) -> object:
        message = b"From: a@example.com\nMessage-ID: <plain@example.com>\n\nHello\n"
        return normalize_email(message + body.encode(), "acme", NOW)

    ratio = growth(read, unit, 16_384)
    assert ratio < 9, f"4 times the input took {ratio:.1f} times as long"


def test_a_hostile_references_list_costs_time_linear_in_its_length() -> None:
    def read(ids: str) -> object:
        message = f"From: a@example.com\nMessage-ID: <r@example.com>\nReferences: {ids}\n\nhi"
        return normalize_email(message.encode(), "acme", NOW)

    # "<aaaa...": a Message-ID that never closes; kept under the header's own bound.
    ratio = growth(read, "<" + "a" * 63, 8_192)
    assert ratio < 9, f"4 times the input took {ratio:.1f} times as long"


def test_a_hostile_megabyte_is_cut_before_it_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    read: list[int] = []

    def spy(markup: str) -> str:
        read.append(len(markup))
        return html_to_text(markup)

    monkeypatch.setattr(email_inbound, "html_to_text", spy)
    for unit in HOSTILE_HTML.values():
        [mail] = normalize_email(html_message(unit * (1_048_576 // len(unit))), "acme", NOW)
        assert mail.text.endswith(EMAIL_TRUNCATED)
        assert len(mail.text) <= EMAIL_TEXT_MAX + len(EMAIL_TRUNCATED)
    assert read
    assert max(read) <= BODY_SOURCE_MAX


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>Hello <b>you</b></p><p>Bye</p>", "\nHello  you \n\nBye\n"),
        ("a < b, 2<3", "a < b, 2<3"),
        ("<<<<", "<<<<"),
        ("x<script>alert('<p>')</script>y<STYLE>p{}</style >z", "x y z"),
        ("before<!-- a comment <p> -->after", "beforeafter"),
        ("kept<!-- never closed <p>text", "kept"),
        ("kept<a href='x' never closed", "kept"),
        ("Tom &amp; Jerry &lt;3 &eacute;t&#233; &#x41;", "Tom & Jerry <3 été A"),
        ("<br>line<br/>line", "\nline\nline"),
        ("<élan>", "<élan>"),
    ],
)
def test_html_to_text_keeps_the_text_and_drops_the_markup(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


# Issue 25, finding 3: a forged From took over a customer's contact.
GATEWAY_SECRET = "gateway-secret"
CUSTOMER = "camille.martin@example.fr"
REPLY_ID = "CAF=reply-48213.2@mail.example.fr"
PASS = "dmarc=pass; dkim=pass; header.from=example.fr; header.d=example.fr"


def with_verdict(value: str, message: bytes = REPLY) -> bytes:
    """``message`` as the gateway passes it on: its verdict header first."""
    return f"{VERDICT_HEADER}: {value}\r\n".encode() + message


def sender(message: bytes, secret: str = GATEWAY_SECRET) -> common_pb2.Author:
    [mail] = normalizers(secret)["email"](message, "acme", NOW)
    assert mail.author.handle == CUSTOMER
    return mail.author


def test_a_from_with_the_gateways_signed_pass_is_verified() -> None:
    assert sender(with_verdict(signed_verdict(GATEWAY_SECRET, PASS, CUSTOMER, REPLY_ID))).verified
    # An aligned DKIM pass is enough where the domain publishes no DMARC policy.
    dkim_only = "dmarc=none; dkim=pass; header.from=example.fr; header.d=example.fr"
    verdict = signed_verdict(GATEWAY_SECRET, dkim_only, CUSTOMER, REPLY_ID)
    assert sender(with_verdict(verdict)).verified
    # Folded by a relay, the verdict reads the same.
    folded = signed_verdict(GATEWAY_SECRET, PASS, CUSTOMER, REPLY_ID).replace(
        "; dkim", ";\r\n dkim"
    )
    assert sender(with_verdict(folded)).verified


def test_a_from_without_a_verdict_is_only_the_senders_claim() -> None:
    assert not sender(REPLY).verified
    # Nor without the secret: nothing can be checked (pollers, backfill, an unset setting).
    verdict = signed_verdict(GATEWAY_SECRET, PASS, CUSTOMER, REPLY_ID)
    assert not sender(with_verdict(verdict), secret="").verified
    [mail] = normalize_email(with_verdict(verdict), "acme", NOW)
    assert not mail.author.verified


@pytest.mark.parametrize(
    "verdict",
    [
        PASS,
        PASS + "; sig=" + "0" * 64,
        signed_verdict("another-secret", PASS, CUSTOMER, REPLY_ID),
        # Signed for the attacker's own domain, which passes; the From is the customer's.
        signed_verdict(
            GATEWAY_SECRET,
            "dmarc=pass; dkim=pass; header.from=attacker.example; header.d=attacker.example",
            CUSTOMER,
            REPLY_ID,
        ),
        # A pass of another message (the attacker's own, or the customer's earlier one).
        signed_verdict(GATEWAY_SECRET, PASS, "mallory@example.fr", REPLY_ID),
        signed_verdict(GATEWAY_SECRET, PASS, CUSTOMER, "earlier@mail.example.fr"),
        # Signed, but no pass for the From's domain.
        signed_verdict(
            GATEWAY_SECRET,
            "dmarc=fail; dkim=fail; header.from=example.fr; header.d=example.fr",
            CUSTOMER,
            REPLY_ID,
        ),
        signed_verdict(
            GATEWAY_SECRET,
            "dmarc=none; dkim=pass; header.from=example.fr; header.d=mailer.example",
            CUSTOMER,
            REPLY_ID,
        ),
        # The signed text changed after signing.
        signed_verdict(
            GATEWAY_SECRET,
            "dmarc=fail; dkim=fail; header.from=example.fr; header.d=example.fr",
            CUSTOMER,
            REPLY_ID,
        ).replace("fail", "pass"),
        # The same result twice: which one did the gateway mean?
        signed_verdict(GATEWAY_SECRET, "dmarc=fail; " + PASS, CUSTOMER, REPLY_ID),
    ],
    ids=[
        "unsigned",
        "bad-signature",
        "other-secret",
        "misaligned-domain",
        "other-sender",
        "other-message",
        "fail",
        "dkim-of-another-domain",
        "edited",
        "duplicate-result",
    ],
)
def test_a_forged_or_failed_verdict_leaves_the_sender_unverified(verdict: str) -> None:
    assert not sender(with_verdict(verdict)).verified


def test_a_verdict_for_one_of_several_senders_verifies_none() -> None:
    message = REPLY.replace(
        b'From: "Camille Martin" <Camille.Martin@example.fr>',
        b'From: "Camille Martin" <Camille.Martin@example.fr>, mallory@attacker.example',
    )
    verdict = signed_verdict(GATEWAY_SECRET, PASS, CUSTOMER, REPLY_ID)
    assert not sender(with_verdict(verdict, message)).verified


def test_a_forged_verdict_among_the_gateways_does_not_hide_it() -> None:
    good = signed_verdict(GATEWAY_SECRET, PASS, CUSTOMER, REPLY_ID)
    assert sender(with_verdict(PASS + "; sig=bad", with_verdict(good))).verified


def test_an_oversized_verdict_header_is_refused_before_parsing() -> None:
    with pytest.raises(PayloadError, match="x-socialcrm-mail-verdict is over 1024 bytes"):
        normalize_email(with_verdict(PASS + "; x=" + "y" * 2_000), "acme", NOW)
