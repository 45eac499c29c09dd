"""Author reach and post virality (pure), so that routing and KPIs can weigh an
influential complaint above an anonymous one."""

from __future__ import annotations

import math

from socialcrm.v1 import common_pb2

# 10 million followers is the top of the scale.
_FOLLOWERS_DECADES = 7
# Engagement per hour, weighted: a share spreads a post further than a like.
_VIRAL_ENGAGEMENT_PER_HOUR = 1_000.0


def author_reach(author: common_pb2.Author) -> float:
    """Influence in [0, 1]: log-scaled followers; verified accounts weigh more."""
    base = min(math.log10(max(author.followers, 0) + 1) / _FOLLOWERS_DECADES, 1.0)
    return min(base + (0.2 if author.verified else 0.0), 1.0)


def virality(engagement: common_pb2.Engagement, age_seconds: float) -> float:
    """Engagement velocity in [0, 1]: weighted engagement per hour since the post, log-scaled."""
    weighted = (
        engagement.likes + 3 * engagement.shares + 2 * engagement.replies + engagement.views / 100
    )
    per_hour = weighted / max(age_seconds / 3600, 1 / 60)
    return min(math.log10(per_hour + 1) / math.log10(_VIRAL_ENGAGEMENT_PER_HOUR + 1), 1.0)
