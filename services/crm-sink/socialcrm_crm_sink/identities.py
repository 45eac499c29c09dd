"""Identities of a person (pure): their kinds, and the keys found in messages or linked by hand.

An identity key is ``<kind>:<value>``: an account on a network (``x:paul``) or a strong key
of the person (``email:...``, ``phone:+33...``, ``customer_number:...``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from socialcrm import contract
from socialcrm.v1 import common_pb2, interaction_pb2

# Every pattern below runs on text anyone can send, so each is linear in the text: it can
# start only where a run of its characters starts (a lookbehind), its repeats are bounded and
# possessive ("{1,64}+" never gives characters back), and no two repeats can match the same
# characters. Python's backtracking engine then tries a bounded number of ways per start.
_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}+"  # local part (RFC 5321: at most 64)
    r"@(?:[A-Za-z0-9-]{1,63}+\.){1,8}[A-Za-z]{2,24}+(?![A-Za-z0-9-])"  # labels, then the TLD
)
_PHONE = re.compile(r"(?<![\w+])\+?\d(?:[ .-]?\d){7,14}(?!\w)")
_CUSTOMER_NUMBER = re.compile(
    r"\b(?:customer|client|cust)[ .:#-]{0,8}+"
    r"(?:(?:number|num|n[o°]?)[ .:#-]{0,8}+)?(\d{5,12})\b",
    re.I,
)
# Only the head of a message is searched for a person's keys: whoever gives their address does
# so in what they write, not 30 KB below it (an email's quoted history is someone else's).
MAX_TEXT_SCANNED = 20_000
# A person gives a key or two about themself: more in one message is a list (or an attack),
# and each key found costs database round trips.
MAX_KEYS_PER_TEXT = 10
# RFC 5321's longest address: a longer handle is no address.
MAX_ADDRESS_LENGTH = 320

# Channels naming their authors by a public display name ("Jean Dupont", "anonymous") that
# anyone may take: only the network's stable user id identifies an author there.
DISPLAY_NAME_CHANNELS = frozenset(
    {common_pb2.CHANNEL_YOUTUBE, common_pb2.CHANNEL_GOOGLE_REVIEWS, common_pb2.CHANNEL_TRIPADVISOR}
)
# Channels whose platform gives a logged-in member's account email as the author's handle
# (configured so: see the README).
ACCOUNT_EMAIL_CHANNELS = frozenset(
    {common_pb2.CHANNEL_CHAT, common_pb2.CHANNEL_FORUM, common_pb2.CHANNEL_COMMUNITY}
)


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
    # An email sender's address without the mail gateway's DMARC pass: a claim, not a key.
    UNVERIFIED_EMAIL = "unverified_email"

    @property
    def strong(self) -> bool:
        """The value identifies one person wherever it appears: it links contacts."""
        return self in (IdentityKind.EMAIL, IdentityKind.PHONE, IdentityKind.CUSTOMER_NUMBER)

    @property
    def handle(self) -> bool:
        """An account on a network: what a search by handle looks for."""
        return not self.strong and self is not IdentityKind.UNVERIFIED_EMAIL

    @property
    def linkable_by_hand(self) -> bool:
        """An admin may link it to a contact through the API."""
        return self.strong or self in (
            IdentityKind.X,
            IdentityKind.FACEBOOK,
            IdentityKind.INSTAGRAM,
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


def searched_head(text: str) -> str:
    """The part of ``text`` searched for keys: its first ``MAX_TEXT_SCANNED`` characters, less
    the word the cut falls in (half an address would be another, valid-looking address)."""
    if len(text) <= MAX_TEXT_SCANNED:
        return text
    head = text[:MAX_TEXT_SCANNED]
    if text[MAX_TEXT_SCANNED].isspace():
        return head
    # No blank at all: the whole head is one cut word.
    return head[: max(0, *(head.rfind(blank) for blank in " \t\r\n"))]


def strong_identities_in_text(text: str) -> list[dict[str, Any]]:
    """Emails, phone numbers and customer numbers a person gives about themself in a message."""
    text = searched_head(text)
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
    return list(found.values())[:MAX_KEYS_PER_TEXT]


def address_of(handle: str) -> str | None:
    """``handle`` as an email address (lower case), None when it is not one."""
    cleaned = handle.strip().lower()
    if len(cleaned) > MAX_ADDRESS_LENGTH or not _EMAIL.fullmatch(cleaned):
        return None
    return cleaned


def channel_name(channel: common_pb2.Channel.ValueType) -> str:
    return common_pb2.Channel.Name(channel).removeprefix("CHANNEL_").lower()


def identity_key(channel: common_pb2.Channel.ValueType, handle: str) -> str:
    """One identity of a person on one channel; handles are case-insensitive on the networks."""
    return f"{channel_name(channel)}:{handle.lower()}"


def sender_verified(interaction: interaction_pb2.Interaction) -> bool:
    """Whether the channel vouches that the author is the account the handle names.

    The networks authenticate their accounts; an email's From is anyone's to write, so it
    counts only when the mail gateway's signed DMARC verdict said pass (ingest then marks the
    author verified).
    """
    if interaction.header.channel == common_pb2.CHANNEL_EMAIL:
        return interaction.author.verified
    return True


def author_identity(interaction: interaction_pb2.Interaction) -> dict[str, Any]:
    """The author's own identity, the key of their contact.

    On channels naming authors by a display name only the network's stable user id is theirs;
    an author without one (anonymous, or not named at all) gets an identity of this item alone,
    never one shared with other nameless authors. An unverified email sender's address is only
    a claim: a key of its own, apart from the ``email:`` key of whoever proved the address.
    """
    author = interaction.author
    header = interaction.header
    name = channel_name(header.channel)
    stable = author.channel_user_id.strip()
    claimed = author.handle.strip()
    if header.channel in DISPLAY_NAME_CHANNELS:
        claimed = ""
    item = header.external_id or interaction.conversation_id or header.event_id
    if header.channel == common_pb2.CHANNEL_EMAIL and claimed and not sender_verified(interaction):
        key = f"{IdentityKind.UNVERIFIED_EMAIL}:{claimed.lower()}"
        name = str(IdentityKind.UNVERIFIED_EMAIL)
    elif claimed:
        key = identity_key(header.channel, claimed)
    elif stable:
        # A stable id is case-sensitive on some networks (YouTube channel ids): kept as given.
        key = f"{name}:{stable}"
    else:
        key = f"{name}:unknown-author/{item}"
    return {
        "key": key,
        "channel": name,
        "handle": author.handle,
        "channel_user_id": author.channel_user_id,
    }


def channel_identities(
    interaction: interaction_pb2.Interaction, primary_key: str
) -> list[dict[str, Any]]:
    """Strong keys the channel itself gives for the author, besides their own identity.

    An author handle that is an email address on a channel whose platform gives a logged-in
    member's account email (a chat visitor's, a forum member's: our own signed channels) is
    the address the channel knows the author by: it links, and merges, automatically. A
    display name that looks like an address proves nothing and links nothing.
    """
    if interaction.header.channel not in ACCOUNT_EMAIL_CHANNELS:
        return []
    address = address_of(interaction.author.handle)
    if address is None or f"{IdentityKind.EMAIL}:{address}" == primary_key:
        return []
    return [strong_identity(IdentityKind.EMAIL, address)]


def typed_identities(
    interaction: interaction_pb2.Interaction, known: set[str]
) -> list[dict[str, Any]]:
    """Strong keys the author merely typed in a message, besides the ``known`` ones.

    Only private messages (DMs, emails, chats) count: a public post may quote somebody
    else's address. Nobody checked that the address is the author's, so such a key never
    merges two contacts by itself (see ``writes``: a merge suggestion instead).
    """
    if interaction.is_public:
        return []
    return [i for i in strong_identities_in_text(interaction.text) if i["key"] not in known]


@dataclass(frozen=True)
class AuthorKeys:
    """The identities one interaction gives for its author, by how far they are trusted."""

    identity: dict[str, Any]
    # Vouched for by the channel: linked, and merged with their holder, automatically.
    verified: list[dict[str, Any]]
    # Typed by an author the channel vouches for: linked when nobody holds them, else a
    # merge suggestion.
    typed: list[dict[str, Any]]
    # Claimed by an unverified author (an email's From, what its body types): a merge
    # suggestion when another contact holds them, never a link.
    suggested: list[dict[str, Any]]


def author_keys(interaction: interaction_pb2.Interaction) -> AuthorKeys:
    identity = author_identity(interaction)
    verified = channel_identities(interaction, identity["key"])
    if sender_verified(interaction):
        known = {identity["key"], *(i["key"] for i in verified)}
        return AuthorKeys(identity, verified, typed_identities(interaction, known), [])
    address = address_of(interaction.author.handle)
    claimed = [strong_identity(IdentityKind.EMAIL, address)] if address else []
    known = {identity["key"], *(i["key"] for i in claimed)}
    return AuthorKeys(identity, verified, [], claimed + typed_identities(interaction, known))


_CHANNELS = {
    channel_name(channel): channel
    for channel in common_pb2.Channel.values()
    if channel != common_pb2.CHANNEL_UNSPECIFIED
}


def erased_author_keys(identities: Iterable[dict[str, Any]]) -> list[str]:
    """The router's names (``contract.author_key``) of the network accounts among a person's
    identities, for their erase command: by the stable user id, and by the handle where a
    handle is the account's (not a display name), as the router names whoever it holds."""
    keys: set[str] = set()
    for identity in identities:
        name = identity.get("channel", "")
        if name == IdentityKind.UNVERIFIED_EMAIL:
            name = IdentityKind.EMAIL
        channel = _CHANNELS.get(name)
        if channel is None:  # a phone number or customer number: no network account
            continue
        stable, handle = identity.get("channel_user_id", ""), identity.get("handle", "")
        if channel in DISPLAY_NAME_CHANNELS:
            handle = ""
        named = {contract.author_key(channel, stable, ""), contract.author_key(channel, "", handle)}
        keys.update(key for key in named if key is not None)
    return sorted(keys)


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
