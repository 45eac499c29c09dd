"""Settings of the sentiment service, read from environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from socialcrm.settings import ServiceSettings


class SentimentSettings(ServiceSettings):
    service_name: str = "sentiment"
    http_port: int = 8002
    sentiment_model: Literal["fast", "lexicon"] = Field(
        "fast",
        description="Default reading of every post: the fast linear head (static e5 + "
        "n-grams + lexicon score) or the lexicons alone.",
    )
    sentiment_accurate_for: Literal["none", "influential", "all"] = Field(
        "influential",
        description="Posts also read by the accurate model (e5 embeddings, about 30 posts/s/"
        "core): none, influential authors (with the fast model: those it is not sure of, "
        "and the posts it is least sure of), or all.",
    )
    sentiment_cascade_max_share: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="At most this share of posts goes to the accurate model for being "
        "unsure, the least sure first. Each 0.01 costs about 0.3 ms of CPU per post on the "
        "demo's posts (an e5 reading: 25-90 ms by length), so the default path's budget "
        "(0.5 ms a post, 2,000 posts/s a core) leaves none; 0.10 gives the cascade's whole "
        "gain on care posts (bench/README.md) at about eight times the fast path's CPU.",
    )
    sentiment_influential_sure_above: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="An influential author's post is read by the accurate model only when "
        "the fast model's confidence is under this (1.0: always). Where the fast model is "
        "at least 0.8 sure, mixing in e5 changed 0 to 2.5 % of the labels on the public "
        "sets and the care dev split, and it skips 86 % of the demo's influential posts.",
    )
    sentiment_accurate_min_reach: float = Field(
        0.6,
        ge=0.0,
        le=1.0,
        description="Author reach from which a post counts as influential (0.6: about "
        "16,000 followers, or 1,000 and verified).",
    )
