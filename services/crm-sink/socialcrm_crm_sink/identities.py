"""Identities of a person (pure): their kinds, and the keys found in messages or linked by hand.

An identity key is ``<kind>:<value>``: an account on a network (``x:paul``) or a strong key
of the person (``email:...``, ``phone:+33...``, ``customer_number:...``).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from socialcrm.v1 import interaction_pb2


class IdentityKind(StrEnum):
    X = "x"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    YOUTUBE = "youtube"
    FORUM = "forum"
    COMMUNITY = "community"
    CHAT = "chat"
    EMAIL = "email"
    PHONE = "phone"
    CUSTOMER_NUMBER = "customer_number"

    @property
    def strong(self) -> bool:
        """The value identifies one person wherever it appears: it links contacts."""
        return self in (IdentityKind.EMAIL, IdentityKind.PHONE, IdentityKind.CUSTOMER_NUMBER)

    @property
    def handle(self) -> bool:
        """An account on a network: what a search by handle looks for."""
        return not self.strong

    @property
    def linkable_by_hand(self) -> bool:
        """An admin may link it to a contact through the API."""
        return self.strong or self in (
            IdentityKind.X,
            IdentityKind.FACEBOOK,
            IdentityKind.INSTAGRAM,
        )


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w+])\+?\d(?:[ .-]?\d){7,14}(?!\w)")
_CUSTOMER_NUMBER = re.compile(
    r"\b(?:client|customer|cust)[ .:#-]*(?:n[o°]?|number|num)?[ .:#-]*(\d{5,12})\b", re.I
)


def strong_identity(kind: IdentityKind, value: str) -> dict[str, Any]:
    """The identity document of a strong key (its kind is the channel it was given on)."""
    return {"key": f"{kind}:{value}", "channel": str(kind), "handle": value}


def normalize_phone(raw: str) -> str:
    """Digits in international form; a 10-digit number starting with 0 is read as French."""
    digits = re.sub(r"\D", "", raw)
    if raw.strip().startswith("+"):
        return f"+{digits}"
    if len(digits) == 10 and digits.startswith("0"):
        return f"+33{digits[1:]}"
    return digits


def strong_identities_in_text(text: str) -> list[dict[str, Any]]:
    """Emails, phone numbers and customer numbers a person gives about themself in a message."""
    found: dict[str, dict[str, Any]] = {}
    for email in _EMAIL.findall(text):
        given = strong_identity(IdentityKind.EMAIL, email.lower())
        found.setdefault(given["key"], given)
    without_emails = _EMAIL.sub(" ", text)
    for number in _CUSTOMER_NUMBER.findall(without_emails):
        given = strong_identity(IdentityKind.CUSTOMER_NUMBER, number)
        found.setdefault(given["key"], given)
    for match in _PHONE.finditer(_CUSTOMER_NUMBER.sub(" ", without_emails)):
        given = strong_identity(IdentityKind.PHONE, normalize_phone(match.group()))
        found.setdefault(given["key"], given)
    return list(found.values())


def channel_identities(
    interaction: interaction_pb2.Interaction, primary_key: str
) -> list[dict[str, Any]]:
    """Strong keys the channel itself gives for the author, besides their own identity.

    An author handle that is an email address is the address the channel knows the author
    by (a chat visitor's or a forum member's account): it links, and merges, automatically.
    """
    handle = interaction.author.handle.strip().lower()
    if _EMAIL.fullmatch(handle) and f"{IdentityKind.EMAIL}:{handle}" != primary_key:
        return [strong_identity(IdentityKind.EMAIL, handle)]
    return []


def typed_identities(
    interaction: interaction_pb2.Interaction, primary_key: str, known: set[str]
) -> list[dict[str, Any]]:
    """Strong keys the author merely typed in a message, besides ``primary_key`` and ``known``.

    Only private messages (DMs, emails, chats) count: a public post may quote somebody
    else's address. Nobody checked that the address is the author's, so such a key never
    merges two contacts by itself (see ``writes``: a merge suggestion instead).
    """
    if interaction.is_public:
        return []
    return [
        i
        for i in strong_identities_in_text(interaction.text)
        if i["key"] != primary_key and i["key"] not in known
    ]


def manual_identity(kind: str, value: str) -> dict[str, Any] | None:
    """An identity an agent links by hand, normalised as automatic links are.

    None when nothing usable is left (``"  @  "``, blanks inside, control characters): such
    a value would create a key like ``x:`` that matches no real account.
    """
    cleaned = value.strip().lstrip("@").strip().lower()
    if kind == IdentityKind.PHONE:
        cleaned = normalize_phone(cleaned)
    if not cleaned.lstrip("+") or any(c.isspace() or not c.isprintable() for c in cleaned):
        return None
    return {"key": f"{kind}:{cleaned}", "channel": kind, "handle": cleaned}
