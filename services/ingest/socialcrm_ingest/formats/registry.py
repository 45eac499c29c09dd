"""Registry of the payload formats ingest understands: format name -> pure normalizer.

Webhooks, pollers and the backfill command all go through these functions, so a past post
imported from a file is validated, bounded (``security.limits``) and identified exactly
like the live one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from socialcrm.v1 import interaction_pb2
from socialcrm_ingest.formats.chat import normalize_chat
from socialcrm_ingest.formats.email_inbound import normalize_email
from socialcrm_ingest.formats.forum import normalize_forum
from socialcrm_ingest.formats.meta import normalize_meta
from socialcrm_ingest.formats.reviews import normalize_google_reviews, normalize_tripadvisor_reviews
from socialcrm_ingest.formats.x_account_activity import normalize_account_activity
from socialcrm_ingest.formats.x_filtered_stream import normalize_filtered_stream
from socialcrm_ingest.formats.youtube import normalize_comment_threads
from socialcrm_ingest.security.limits import check

# (payload, brand, ingested_at) -> interactions; raises PayloadError naming the bad field.
Normalizer = Callable[[Any, str, datetime], list[interaction_pb2.Interaction]]


def bounded(normalize: Normalizer) -> Normalizer:
    """``normalize``, refusing items over the bounds of ``security.limits`` (PayloadError)."""

    def normalize_bounded(
        payload: Any, brand: str, ingested_at: datetime
    ) -> list[interaction_pb2.Interaction]:
        interactions = normalize(payload, brand, ingested_at)
        check(interactions)
        return interactions

    return normalize_bounded


def normalizers(mail_gateway_secret: str = "") -> Mapping[str, Normalizer]:
    """Every format's normalizer; an email's sender is verified only with the secret that
    signs the mail gateway's verdict (``security.mail_verdict``)."""
    return {
        name: bounded(normalize)
        for name, normalize in (
            ("x-account-activity", normalize_account_activity),
            ("x-filtered-stream", normalize_filtered_stream),
            ("meta", normalize_meta),
            ("forum", normalize_forum),
            # The payload of "email" is the raw RFC 5322 message (bytes, or str in a JSONL file).
            ("email", partial(normalize_email, gateway_secret=mail_gateway_secret)),
            ("chat", normalize_chat),
            ("youtube-comment-threads", normalize_comment_threads),
            ("google-business-reviews", normalize_google_reviews),
            ("tripadvisor-reviews", normalize_tripadvisor_reviews),
        )
    }


# Pollers and the backfill: no gateway vouches for what they read, so no email sender is
# verified there.
NORMALIZERS = normalizers()
