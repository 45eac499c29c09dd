"""The sentiment service's own Prometheus metrics (the shared runtime declares the rest)."""

from __future__ import annotations

from prometheus_client import Counter

POSTS_READ = Counter(
    "socialcrm_sentiment_posts_total",
    "Posts whose sentiment was read, by the model that read it.",
    ["model"],
)
