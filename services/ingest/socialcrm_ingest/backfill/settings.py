"""Settings of the backfill command (``socialcrm-ingest-backfill``), read from the environment."""

from __future__ import annotations

from pydantic import Field

from socialcrm.settings import ServiceSettings


class BackfillSettings(ServiceSettings):
    service_name: str = "ingest-backfill"
    default_brand: str = Field("acme", description="Brand of lines that do not name one.")
    backfill_batch_size: int = Field(
        500, description="Lines published between two checkpoints (acknowledged first)."
    )
    publish_timeout_seconds: float = Field(
        60.0, description="Wait for the broker's acknowledgement of a batch before giving up."
    )
