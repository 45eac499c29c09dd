"""A realistic stream of social posts about a brand, in French and English (pure logic).

Posts are X Account Activity ``tweet_create_events`` bodies, the format ingest
receives from X, with a believable mix: complaints, questions, praise, purchase
intent, churn threats; small and influential authors; replies in threads.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

BRAND_HANDLE = "AcmeFrance"

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

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            yield self.tweet_event()
