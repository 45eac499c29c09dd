"""A realistic stream of customer messages about a brand, in French and English (pure logic).

Each delivery is a webhook body in the format ingest receives from the network: X Account
Activity tweets, Meta Page feed comments, Instagram comments and Messenger messages, RFC 5322
emails, live-chat transcripts and forum posts. The mix is believable: complaints, questions,
praise, purchase intent, churn threats; small and influential authors; replies in threads;
the same people writing on several channels (their email address links them in the CRM).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from socialcrm_devstack.webhook_signing import LOCAL_MAIL_GATEWAY_SECRET
from socialcrm_ingest.security.mail_verdict import VERDICT_HEADER, signed_verdict

BRAND_HANDLE = "AcmeFrance"
META_PAGE_ID = "104650388876123"
INSTAGRAM_ACCOUNT_ID = "17841405309211844"
# Share of deliveries per channel: public networks first, then the private channels.
CHANNEL_MIX = {
    "x": 0.45,
    "facebook": 0.15,
    "instagram": 0.10,
    "messenger": 0.05,
    "email": 0.10,
    "chat": 0.10,
    "forum": 0.05,
}
WEBHOOK_PATHS = {
    "x": "/v1/webhooks/x",
    "facebook": "/v1/webhooks/meta",
    "instagram": "/v1/webhooks/meta",
    "messenger": "/v1/webhooks/meta",
    "email": "/v1/webhooks/email",
    "chat": "/v1/webhooks/chat",
    "forum": "/v1/webhooks/forum",
}


@dataclass(frozen=True)
class Delivery:
    """One webhook call: where to POST what, and how many interactions it carries."""

    channel: str
    path: str
    body: bytes
    content_type: str
    events: int


POSTS: dict[str, list[str]] = {
    "fr": [
        "@{brand} Mon colis est en retard depuis une semaine, c'est inadmissible !",
        "@{brand} Toujours aucune réponse du service client, c'est une honte.",
        "@{brand} Livraison parfaite et produit super, merci !",
        "@{brand} Bonjour, est-ce que la commande peut être livrée en point relais ?",
        "@{brand} Je vais résilier mon abonnement si rien ne bouge d'ici demain.",
        "@{brand} Bravo pour le nouveau magasin de Lyon, l'équipe est top",
        "@{brand} Remboursement toujours pas reçu, arnaque ?",
        "@{brand} Je cherche à acheter le modèle X200, il est dispo quand ?",
        "@{brand} Application en panne depuis ce matin, impossible de payer",
        "@{brand} Merci à Julie du SAV, problème réglé en 5 minutes !",
    ],
    "en": [
        "@{brand} My order is two weeks late and nobody answers. Worst service ever.",
        "@{brand} Thanks for the quick refund, great service!",
        "@{brand} Hi, do you ship to Belgium? Thinking of buying the X200.",
        "@{brand} Your app has been broken all day, I can't check out. Useless.",
        "@{brand} Love the new collection, perfect fit",
        "@{brand} I'll cancel my subscription if this isn't fixed today.",
        "@{brand} Is the store in Paris open on Sunday?",
        "@{brand} Package arrived damaged, I want a refund.",
        "@{brand} Best customer support I've had in years, thank you",
        "@{brand} Still waiting for my replacement, very disappointed.",
    ],
}
# A viral negative burst on one subject (a delivery outage): many authors, the same grievance.
BURST_SUBJECT = "delivery outage"
BURST_POSTS: dict[str, list[str]] = {
    "fr": [
        "@{brand} Livraisons en panne partout ? Mon colis est bloqué depuis 3 jours, inadmissible",
        "@{brand} Aucune livraison aujourd'hui et aucune info, c'est une honte",
        "@{brand} Colis bloqué, suivi en panne, service client injoignable. Scandaleux.",
        "@{brand} Troisième jour sans livraison, je veux être remboursé, c'est nul",
        "@{brand} Vos livraisons ne marchent plus, commande annulée sans prévenir. Inadmissible !",
    ],
    "en": [
        "@{brand} Your deliveries are down everywhere, my parcel is stuck. Unacceptable.",
        "@{brand} Delivery outage again? Three days late and no answer. Worst service ever.",
        "@{brand} Tracking broken, parcel lost, nobody answers. This is a scam.",
    ],
}
# The burst's influential author: reach 0.97 (log10 of 250k followers over 7 decades, +0.2
# verified), above the 0.6 of the router's influential-negative escalation.
INFLUENTIAL_FOLLOWERS = 250_000
FIRST_NAMES = ["Camille", "Lucas", "Emma", "Hugo", "Chloé", "Noah", "Olivia", "James", "Sofia"]
X_TIME_FORMAT = "%a %b %d %H:%M:%S +0000 %Y"


class DemoStream:
    """Generates tweets; ``seed`` makes a run reproducible."""

    def __init__(self, seed: int | None = None, french_share: float = 0.6) -> None:
        self.random = random.Random(seed)
        self.french_share = french_share
        self.next_id = 1_990_000_000_000_000_000 + self.random.randrange(10**15)
        self.authors = [self._author(i) for i in range(400)]
        self.recent_ids: list[str] = []
        # Drawn at the burst's first call, so that a seed gives the same steady stream.
        self.burst_authors: list[dict[str, Any]] = []

    def _author(self, index: int) -> dict[str, Any]:
        name = self.random.choice(FIRST_NAMES)
        # Follower counts are heavy-tailed: most people have a few hundred, a few have 100k+.
        followers = int(self.random.lognormvariate(5.5, 2.0))
        return {
            "id": 10_000 + index,
            "id_str": str(10_000 + index),
            "name": f"{name} {chr(65 + index % 26)}.",
            "screen_name": f"{name.lower().replace('é', 'e')}_{index}",
            "followers_count": followers,
            "friends_count": self.random.randrange(50, 2000),
            "verified": followers > 50_000 and self.random.random() < 0.5,
            "created_at": "Sat Oct 03 16:10:21 +0000 2015",
        }

    def tweet_event(self, now: datetime | None = None) -> dict[str, Any]:
        language = "fr" if self.random.random() < self.french_share else "en"
        text = self.random.choice(POSTS[language]).format(brand=BRAND_HANDLE)
        self.next_id += self.random.randrange(1, 10_000)
        tweet_id = str(self.next_id)
        in_reply_to = (
            self.random.choice(self.recent_ids)
            if self.recent_ids and self.random.random() < 0.15
            else None
        )
        self.recent_ids = [*self.recent_ids[-50:], tweet_id]
        moment = now or datetime.now(UTC)
        tweet = {
            "created_at": moment.strftime(X_TIME_FORMAT),
            "id": int(tweet_id),
            "id_str": tweet_id,
            "text": text,
            "truncated": False,
            "in_reply_to_status_id": int(in_reply_to) if in_reply_to else None,
            "in_reply_to_status_id_str": in_reply_to,
            "in_reply_to_screen_name": BRAND_HANDLE,
            "user": self.random.choice(self.authors),
            "is_quote_status": False,
            "quote_count": 0,
            "reply_count": self.random.randrange(0, 5),
            "retweet_count": self.random.randrange(0, 30),
            "favorite_count": self.random.randrange(0, 100),
            "entities": {"hashtags": [], "urls": [], "user_mentions": [], "symbols": []},
            "lang": language,
            "timestamp_ms": str(int(moment.timestamp() * 1000)),
        }
        return {"for_user_id": "2244994945", "tweet_create_events": [tweet]}

    def burst_delivery(self, posts: int, now: datetime | None = None) -> Delivery:
        """One X webhook call carrying ``posts`` tweets of the burst, each from one of many
        authors; the influential author's tweet is in the burst's first call."""
        moment = now or datetime.now(UTC)
        tweets = []
        if not self.burst_authors:
            influential = {
                **self._author(999),
                "followers_count": INFLUENTIAL_FOLLOWERS,
                "verified": True,
            }
            tweets.append(self._burst_tweet(influential, moment))
            self.burst_authors = [self._author(1_000 + i) for i in range(300)]
        while len(tweets) < posts:
            tweets.append(self._burst_tweet(self.random.choice(self.burst_authors), moment))
        body = {"for_user_id": "2244994945", "tweet_create_events": tweets}
        return Delivery(
            "x", WEBHOOK_PATHS["x"], json.dumps(body).encode(), "application/json", len(tweets)
        )

    def _burst_tweet(self, author: dict[str, Any], moment: datetime) -> dict[str, Any]:
        language = "fr" if self.random.random() < self.french_share else "en"
        tweet_id = self._new_id()
        return {
            "created_at": moment.strftime(X_TIME_FORMAT),
            "id": int(tweet_id),
            "id_str": tweet_id,
            "text": self.random.choice(BURST_POSTS[language]).format(brand=BRAND_HANDLE),
            "truncated": False,
            "in_reply_to_status_id": None,
            "in_reply_to_status_id_str": None,
            "in_reply_to_screen_name": BRAND_HANDLE,
            "user": author,
            "is_quote_status": False,
            "quote_count": self.random.randrange(0, 20),
            "reply_count": self.random.randrange(5, 50),
            "retweet_count": self.random.randrange(20, 500),
            "favorite_count": self.random.randrange(50, 2000),
            "entities": {"hashtags": [], "urls": [], "user_mentions": [], "symbols": []},
            "lang": language,
            "timestamp_ms": str(int(moment.timestamp() * 1000)),
        }

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            yield self.tweet_event()

    def delivery(self, batch: int = 1, now: datetime | None = None) -> Delivery:
        """A webhook call on a channel drawn from CHANNEL_MIX, with ``batch`` interactions
        where the network batches them (one email per call)."""
        channel = self.random.choices(list(CHANNEL_MIX), weights=list(CHANNEL_MIX.values()))[0]
        moment = now or datetime.now(UTC)
        if channel == "email":
            return Delivery(
                channel, WEBHOOK_PATHS[channel], self._email(moment), "message/rfc822", 1
            )
        body: dict[str, Any]
        if channel == "x":
            tweets = [self.tweet_event(moment)["tweet_create_events"][0] for _ in range(batch)]
            body = {"for_user_id": "2244994945", "tweet_create_events": tweets}
        elif channel == "facebook":
            changes = [self._facebook_comment(moment) for _ in range(batch)]
            body = {"object": "page", "entry": [self._entry(META_PAGE_ID, moment, changes=changes)]}
        elif channel == "instagram":
            changes = [self._instagram_comment() for _ in range(batch)]
            entry = self._entry(INSTAGRAM_ACCOUNT_ID, moment, changes=changes)
            body = {"object": "instagram", "entry": [entry]}
        elif channel == "messenger":
            messages = [self._messenger_message(moment) for _ in range(batch)]
            body = {
                "object": "page",
                "entry": [self._entry(META_PAGE_ID, moment, messaging=messages)],
            }
        elif channel == "chat":
            body = self._chat_transcript(moment, batch)
        else:
            body = {"events": [self._forum_post(moment) for _ in range(batch)]}
        return Delivery(
            channel, WEBHOOK_PATHS[channel], json.dumps(body).encode(), "application/json", batch
        )

    def _text(self) -> tuple[str, str]:
        """(language, text) of a post without its @mention of the brand."""
        language = "fr" if self.random.random() < self.french_share else "en"
        text = self.random.choice(POSTS[language]).format(brand=BRAND_HANDLE)
        return language, text.removeprefix(f"@{BRAND_HANDLE} ")

    def _new_id(self) -> str:
        self.next_id += self.random.randrange(1, 10_000)
        return str(self.next_id)

    def _person(self) -> tuple[dict[str, Any], str]:
        """An author of the X stream and their email address (the same person everywhere)."""
        author = self.random.choice(self.authors)
        return author, f"{author['screen_name']}@example.com"

    @staticmethod
    def _entry(account_id: str, moment: datetime, **items: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": account_id, "time": int(moment.timestamp()), **items}

    def _facebook_comment(self, moment: datetime) -> dict[str, Any]:
        author, _ = self._person()
        post_id = f"{META_PAGE_ID}_{self.random.randrange(10**14, 10**15)}"
        _, text = self._text()
        return {
            "field": "feed",
            "value": {
                "from": {"id": f"7{author['id_str']}", "name": author["name"]},
                "message": text,
                "post_id": post_id,
                "comment_id": f"{post_id.split('_')[1]}_{self._new_id()}",
                "parent_id": post_id,
                "created_time": int(moment.timestamp()),
                "item": "comment",
                "verb": "add",
            },
        }

    def _instagram_comment(self) -> dict[str, Any]:
        author, _ = self._person()
        _, text = self._text()
        return {
            "field": "comments",
            "value": {
                "from": {"id": f"23{author['id_str']}", "username": author["screen_name"]},
                "media": {
                    "id": f"1791819522{self.random.randrange(10**7)}",
                    "media_product_type": "FEED",
                },
                "id": self._new_id(),
                "text": text,
            },
        }

    def _messenger_message(self, moment: datetime) -> dict[str, Any]:
        author, address = self._person()
        language, text = self._text()
        if self.random.random() < 0.3:
            text += f" {'Mon email' if language == 'fr' else 'My email'}: {address}"
        return {
            "sender": {"id": f"27{author['id_str']}"},
            "recipient": {"id": META_PAGE_ID},
            "timestamp": int(moment.timestamp() * 1000),
            "message": {"mid": f"m_{self._new_id()}", "text": text},
        }

    def _email(self, moment: datetime) -> bytes:
        author, address = self._person()
        language, text = self._text()
        message = EmailMessage()
        message["From"] = f"{author['name']} <{address}>"
        message["To"] = "Acme Support <support@acme.example>"
        message["Subject"] = "Ma commande" if language == "fr" else "My order"
        message["Date"] = format_datetime(moment)
        message["Message-ID"] = make_msgid(idstring=self._new_id(), domain="mail.example.com")
        message["Content-Language"] = language
        # The brand's mail gateway checked the sender's domain (DMARC) and says so, signed.
        domain = address.rpartition("@")[2]
        verdict = f"dmarc=pass; dkim=pass; header.from={domain}; header.d={domain}"
        message_id = str(message["Message-ID"]).strip("<>")
        message[VERDICT_HEADER] = signed_verdict(
            LOCAL_MAIL_GATEWAY_SECRET, verdict, address, message_id
        )
        message.set_content(f"{'Bonjour' if language == 'fr' else 'Hello'},\n\n{text}\n")
        return bytes(message)

    def _chat_transcript(self, moment: datetime, visitor_messages: int) -> dict[str, Any]:
        author, address = self._person()
        language = "fr" if self.random.random() < self.french_share else "en"
        stamp = moment.isoformat().replace("+00:00", "Z")
        messages = []
        for number in range(visitor_messages):
            text = self.random.choice(POSTS[language]).format(brand=BRAND_HANDLE)
            messages.append(
                {
                    "id": f"{number + 1}",
                    "from": "visitor",
                    "text": text.removeprefix(f"@{BRAND_HANDLE} "),
                    "created_at": stamp,
                }
            )
        return {
            "conversation_id": f"c-{self._new_id()}",
            "language": language,
            "visitor": {"id": f"v-{author['id_str']}", "name": author["name"], "email": address},
            "messages": messages,
        }

    def _forum_post(self, moment: datetime) -> dict[str, Any]:
        author, _ = self._person()
        language, text = self._text()
        post_id = f"p-{self._new_id()}"
        return {
            "type": "post",
            "id": post_id,
            "thread_id": f"t-{post_id}",
            "space": "community",
            "author": {
                "id": f"u-{author['id_str']}",
                "username": author["screen_name"],
                "display_name": author["name"],
            },
            "text": text,
            "created_at": moment.isoformat().replace("+00:00", "Z"),
            "language": language,
        }
