"""Normalization of inbound email (RFC 5322 messages) into Interaction events (pure logic).

The sender's address, lower-cased, is the author's handle. It is the identity the CRM links
across channels (a chat visitor or a DM giving the same address is the same person) only
when the author is ``verified``: the mail gateway's signed verdict says the From's domain
passed DMARC or an aligned DKIM check (``security.mail_verdict``). Anyone can write any
From, so without it the address is the sender's claim, and the author is unverified.
Replies keep the thread of the first message (``References``), and quoted earlier messages
are cut from the text so that sentiment reads only what the customer wrote this time.

The message's structure is bounded before and after parsing (``mime_bounds``), and the
parsing runs off the event loop (``webhooks.handlers``). The body has no network maximum:
its decoded source is cut at ``mime_bounds.BODY_SOURCE_MAX`` before any text is made of it,
so reading it takes bounded time (``html_text`` is linear), and the text is cut at
``limits.EMAIL_TEXT_MAX`` with a marker rather than lost.
"""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from typing import Any

from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_ingest.formats.html_text import html_to_text
from socialcrm_ingest.formats.payload import PayloadError, header, in_range
from socialcrm_ingest.security.limits import EMAIL_SUBJECT_MAX, EMAIL_TEXT_MAX, EMAIL_TRUNCATED
from socialcrm_ingest.security.mail_verdict import VERDICT_HEADER, sender_verified
from socialcrm_ingest.security.mime_bounds import BODY_SOURCE_MAX, raw_problem, tree_problem

_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
# "On Mon, 16 Nov 2026 at 09:12, Acme <support@acme.example> wrote:" and its French twin.
# Tried on the last lines only, anchored (``match``): time linear in the line.
_ATTRIBUTION = re.compile(r"^(On|Le) .+(wrote|a écrit)\s*:\s*$", re.IGNORECASE)


def _ids(value: str | None) -> list[str]:
    return _MESSAGE_ID.findall(value or "")


def strip_quoted(text: str) -> str:
    """The new part of a reply: quoted lines (``>``) and their attribution line removed."""
    kept: list[str] = []
    for line in text.splitlines():
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    while kept and (not kept[-1].strip() or _ATTRIBUTION.match(kept[-1].strip())):
        kept.pop()
    return "\n".join(kept).strip()


def _parse(raw: bytes) -> EmailMessage:
    problem = raw_problem(raw)
    if problem is not None:
        raise PayloadError(problem)
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(message, EmailMessage):
        raise PayloadError("body is not an RFC 5322 message")
    problem = tree_problem(message)
    if problem is not None:
        raise PayloadError(problem)
    return message


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def _body_text(message: EmailMessage) -> str:
    """The new text of the body, cut at ``EMAIL_TEXT_MAX`` with a marker."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError) as exc:
        raise PayloadError(f"body cannot be decoded: {exc}") from exc
    if not isinstance(content, str):
        return ""
    # Cut before reading: whatever the body holds, the text is made of a bounded source.
    source = content[:BODY_SOURCE_MAX]
    if part.get_content_subtype() == "html":
        source = html_to_text(source)
    text = strip_quoted(source)
    if len(content) > BODY_SOURCE_MAX or len(text) > EMAIL_TEXT_MAX:
        return text[:EMAIL_TEXT_MAX] + EMAIL_TRUNCATED
    return text


def _senders(message: EmailMessage) -> tuple[list[str], str]:
    """Every From address (lower case), and the display name of the first."""
    try:
        sender = message["From"]
        addresses = sender.addresses if sender is not None else ()
    except (IndexError, ValueError, AttributeError) as exc:
        raise PayloadError(f"From is not an address: {exc}") from exc
    if not addresses or "@" not in addresses[0].addr_spec:
        raise PayloadError("From is missing")
    return [a.addr_spec.lower() for a in addresses], addresses[0].display_name


def _date(message: EmailMessage, ingested_at: datetime) -> datetime:
    raw = message.get("Date")
    if raw is None:
        # Date is mandatory in RFC 5322 but some gateways drop it: arrival is the best guess.
        return ingested_at
    try:
        moment = parsedate_to_datetime(str(raw))
        moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise PayloadError(f"Date {str(raw)!r} is not an RFC 5322 date") from exc
    return in_range(moment, "Date", ingested_at)


def normalize_email(
    payload: Any, brand: str, ingested_at: datetime, *, gateway_secret: str = ""
) -> list[interaction_pb2.Interaction]:
    """One interaction from one message, given as its raw bytes or text.

    ``gateway_secret`` checks the mail gateway's verdict; without it no sender is verified.
    """
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogateescape")
    if not isinstance(payload, bytes | bytearray):
        raise PayloadError("body is not an RFC 5322 message")
    try:
        return [_interaction(_parse(bytes(payload)), brand, ingested_at, gateway_secret)]
    except RecursionError as exc:
        # Within the bounds, a header can still nest comments or groups too deep to parse.
        raise PayloadError("a header or the MIME structure nests too deep to parse") from exc


def _interaction(
    message: EmailMessage, brand: str, ingested_at: datetime, gateway_secret: str
) -> interaction_pb2.Interaction:
    addresses, name = _senders(message)
    address = addresses[0]
    message_ids = _ids(str(message.get("Message-ID") or ""))
    if not message_ids:
        raise PayloadError("Message-ID is missing")
    message_id = message_ids[0]
    verdicts = [str(value) for value in message.get_all(VERDICT_HEADER) or ()]
    verified = sender_verified(verdicts, addresses, message_id, gateway_secret)
    parents = _ids(str(message.get("In-Reply-To") or ""))
    references = _ids(str(message.get("References") or ""))
    subject = _cut(str(message.get("Subject") or "").strip(), EMAIL_SUBJECT_MAX)
    body = _body_text(message)
    language = str(message.get("Content-Language") or "").split(",")[0].strip()
    return interaction_pb2.Interaction(
        header=header(
            common_pb2.CHANNEL_EMAIL, message_id, _date(message, ingested_at), ingested_at
        ),
        # The thread is named by its first message, whichever reply arrives first.
        conversation_id=(references or parents or [message_id])[0],
        in_reply_to=(parents or references[-1:] or [""])[0],
        is_public=False,
        author=common_pb2.Author(
            handle=address, channel_user_id=address, display_name=name, verified=verified
        ),
        text=f"{subject}\n\n{body}".strip() if subject else body,
        language_hint=language,
        raw_ref=f"email/{message_id}",
        brand=brand,
        kind="email",
    )
