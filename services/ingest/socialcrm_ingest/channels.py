"""Registry of the payload formats ingest understands: format name -> pure normaliser.

Webhooks, pollers and the backfill command all go through these functions, so a past post
imported from a file is validated and identified exactly like the live one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from socialcrm.v1 import interaction_pb2
from socialcrm_ingest.x_activity import normalize_account_activity

# (payload, brand, ingested_at) -> interactions; raises PayloadError naming the bad field.
Normalizer = Callable[[Any, str, datetime], list[interaction_pb2.Interaction]]


def _x_account_activity(
    payload: Any, brand: str, ingested_at: datetime
) -> list[interaction_pb2.Interaction]:
    return normalize_account_activity(payload, brand=brand, ingested_at=ingested_at)


NORMALIZERS: Mapping[str, Normalizer] = {
    "x-account-activity": _x_account_activity,
}
