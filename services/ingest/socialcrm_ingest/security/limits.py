"""Bounds of a normalized interaction, checked before anything is published (pure logic).

Every normalizer (webhooks, pollers, backfill) goes through ``check``: an item over a bound
is refused with a ``PayloadError`` naming the item, the field and the limit, never cut
short, because a text longer than its network allows cannot be what the network sent. The
one exception is an email body, which has no network maximum: ``formats.email_inbound`` cuts it
at ``EMAIL_TEXT_MAX`` with a marker before it gets here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeAlias

from socialcrm.v1 import common_pb2, interaction_pb2
from socialcrm_ingest.payload_error import PayloadError

Channel: TypeAlias = common_pb2.Channel.ValueType

# Ids of every network are far shorter (X 19 digits, Meta "<page>_<post>_<comment>",
# Message-IDs in practice under 100 characters).
ID_MAX = 256
# Handles: X 15, Instagram 30, an email address 254 (RFC 5321); names: X 50, Facebook 75.
HANDLE_MAX = 256
NAME_MAX = 256
# The longest BCP 47 tag worth keeping (RFC 5646 section 4.4.1).
LANGUAGE_MAX = 35
# A post carries a few links and pictures (X: 4 media; Facebook: 10 photos per post).
LINKS_MAX = 100
MEDIA_MAX = 100
URL_MAX = 2_048
MEDIA_TYPE_MAX = 64

# Our own channels (forum, chat) and the email body: chosen, see the README.
FORUM_TEXT_MAX = 32_000  # Discourse's default max_post_length
FORUM_TITLE_MAX = 300
CHAT_TEXT_MAX = 10_000
EMAIL_SUBJECT_MAX = 998  # RFC 5322 line length
EMAIL_TEXT_MAX = 32_000
EMAIL_TRUNCATED = "\n[truncated]"  # ends an email body cut at EMAIL_TEXT_MAX

# The network's own maximum of a text, in characters, by channel and kind.
# X: 280 weighted characters, 25,000 for Premium long posts; the @names that open a reply
# do not count (up to 50 of them, 16 characters each), so they are allowed on top.
X_TEXT_MAX = 25_000 + 50 * 16
TEXT_MAX: dict[tuple[Channel, str], int] = {
    (common_pb2.CHANNEL_X, "post"): X_TEXT_MAX,
    (common_pb2.CHANNEL_X, "reply"): X_TEXT_MAX,
    (common_pb2.CHANNEL_X, "quote"): X_TEXT_MAX,
    (common_pb2.CHANNEL_X, "dm"): 10_000,
    (common_pb2.CHANNEL_FACEBOOK, "post"): 63_206,
    (common_pb2.CHANNEL_FACEBOOK, "comment"): 8_000,
    # Meta publishes no maximum for the messages people send to a Page or an account
    # (2,000 is what a Page may send): bounded generously.
    (common_pb2.CHANNEL_FACEBOOK, "dm"): 20_000,
    (common_pb2.CHANNEL_INSTAGRAM, "comment"): 2_200,
    (common_pb2.CHANNEL_INSTAGRAM, "mention"): 2_200,
    (common_pb2.CHANNEL_INSTAGRAM, "dm"): 20_000,
    (common_pb2.CHANNEL_YOUTUBE, "comment"): 10_000,
    (common_pb2.CHANNEL_YOUTUBE, "reply"): 10_000,
    (common_pb2.CHANNEL_GOOGLE_REVIEWS, "review"): 4_096,
    # TripAdvisor publishes a minimum (200 characters), no maximum; its longest review
    # (17,241 words) is about 100,000 characters. Title (120) and text joined.
    (common_pb2.CHANNEL_TRIPADVISOR, "review"): 120_000,
    (common_pb2.CHANNEL_FORUM, "post"): FORUM_TEXT_MAX + FORUM_TITLE_MAX,
    (common_pb2.CHANNEL_FORUM, "reply"): FORUM_TEXT_MAX + FORUM_TITLE_MAX,
    (common_pb2.CHANNEL_COMMUNITY, "post"): FORUM_TEXT_MAX + FORUM_TITLE_MAX,
    (common_pb2.CHANNEL_COMMUNITY, "reply"): FORUM_TEXT_MAX + FORUM_TITLE_MAX,
    # Subject, blank line, body.
    (common_pb2.CHANNEL_EMAIL, "email"): EMAIL_SUBJECT_MAX
    + 2
    + EMAIL_TEXT_MAX
    + len(EMAIL_TRUNCATED),
    (common_pb2.CHANNEL_CHAT, "chat"): CHAT_TEXT_MAX,
}
# A kind not in the table (none today) gets the largest maximum of any network.
TEXT_MAX_DEFAULT = max(TEXT_MAX.values())


def text_max(channel: Channel, kind: str) -> int:
    return TEXT_MAX.get((channel, kind), TEXT_MAX_DEFAULT)


def check(interactions: Iterable[interaction_pb2.Interaction]) -> None:
    """Refuse the first item over a bound, naming it, its field and the limit."""
    for index, interaction in enumerate(interactions):
        problem = problem_of(interaction)
        if problem is not None:
            raise PayloadError(f"item {index}: {problem}")


def problem_of(interaction: interaction_pb2.Interaction) -> str | None:
    """What is out of bounds in one interaction (None: nothing)."""
    author = interaction.author
    channel_name = common_pb2.Channel.Name(interaction.header.channel)
    strings = (
        ("external id", interaction.header.external_id, ID_MAX),
        ("conversation id", interaction.conversation_id, ID_MAX),
        ("in_reply_to", interaction.in_reply_to, ID_MAX),
        ("author handle", author.handle, HANDLE_MAX),
        ("author id", author.channel_user_id, HANDLE_MAX),
        ("author name", author.display_name, NAME_MAX),
        ("language", interaction.language_hint, LANGUAGE_MAX),
        (
            f"text ({channel_name} {interaction.kind})",
            interaction.text,
            text_max(interaction.header.channel, interaction.kind),
        ),
    )
    for name, value, limit in strings:
        if len(value) > limit:
            return f"{name} has {len(value)} characters, over the maximum of {limit}"
    if author.handle and not author.handle.strip().lstrip("@").strip():
        return f"author handle {author.handle!r} is blank"
    if len(interaction.links) > LINKS_MAX:
        return f"{len(interaction.links)} links, over the maximum of {LINKS_MAX}"
    if len(interaction.media) > MEDIA_MAX:
        return f"{len(interaction.media)} media, over the maximum of {MEDIA_MAX}"
    urls = [*interaction.links, *(m.url for m in interaction.media)]
    if any(len(url) > URL_MAX for url in urls):
        return f"a link or media URL is over the maximum of {URL_MAX} characters"
    if any(len(m.media_type) > MEDIA_TYPE_MAX for m in interaction.media):
        return f"a media type is over the maximum of {MEDIA_TYPE_MAX} characters"
    return None
