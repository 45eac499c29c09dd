"""The sentiment service's stream handler: interactions in, enriched interactions out."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import ConsumerRecord
from google.protobuf.message import Message

from socialcrm.v1 import interaction_pb2
from socialcrm_sentiment.accurate import AccurateSentiment
from socialcrm_sentiment.enrich import Enricher, enrich
from socialcrm_sentiment.metrics import POSTS_READ


class SentimentHandler:
    """Enriches interactions with ``enricher`` (the fast model and its cascade) or, without
    it, with the lexicons, ``accurate`` then reading the posts of authors with at least
    ``accurate_min_reach``."""

    def __init__(
        self,
        enricher: Enricher | None,
        accurate: AccurateSentiment | None,
        accurate_min_reach: float,
    ) -> None:
        self.enricher = enricher
        self.accurate = accurate
        self.accurate_min_reach = accurate_min_reach

    def enrich_batch(
        self, interactions: Sequence[interaction_pb2.Interaction]
    ) -> list[Sequence[Message]]:
        """The enriched interaction of each interaction, counted by the model that read it."""
        if self.enricher is None:
            POSTS_READ.labels("lexicon").inc(len(interactions))
            return [[enrich(i, self.accurate, self.accurate_min_reach)] for i in interactions]
        sent_before = self.enricher.sent
        enriched = self.enricher.enrich_many(interactions)
        sent = self.enricher.sent - sent_before
        POSTS_READ.labels("fast").inc(len(interactions) - sent)
        POSTS_READ.labels("fast+accurate").inc(sent)
        return [[e] for e in enriched]

    # Enrichment is CPU-bound (a fetch of 500 posts with the cascade takes seconds): run it
    # off the event loop, so the consumer's heartbeats and the HTTP probes still answer.
    # On the loop, a loaded machine saw sentiment put out of its group mid-batch, the batch
    # handled again, and /metrics time out.
    async def handle(
        self, interaction: interaction_pb2.Interaction, _: ConsumerRecord[bytes, bytes]
    ) -> Sequence[Message]:
        return (await asyncio.to_thread(self.enrich_batch, [interaction]))[0]

    async def handle_batch(
        self,
        batch: Sequence[tuple[interaction_pb2.Interaction, ConsumerRecord[bytes, bytes]]],
    ) -> Sequence[Sequence[Message]]:
        return await asyncio.to_thread(self.enrich_batch, [interaction for interaction, _ in batch])
