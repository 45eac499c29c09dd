"""Settings of the poller (``socialcrm-ingest-poller``), read from the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from socialcrm import contract
from socialcrm.settings import ServiceSettings
from socialcrm_ingest.poller.sources import KINDS, PollSource, parse_sources


class PollerSettings(ServiceSettings):
    service_name: str = "ingest-poller"
    http_port: int = 8011
    default_brand: str = Field("acme", description="Brand of sources that do not name one.")
    poll_sources: str = Field(
        "",
        description="The sources to poll: a JSON (or YAML) list, or the path of a file "
        "holding one (see --help above).",
    )
    poll_state_topic: str = Field(
        contract.POLL_STATE.name,
        description="Compacted topic of the pollers' cursors, keyed by source name.",
    )
    poll_interval_seconds: float = Field(
        300.0, description="Pause between two polls of a source (unless it sets its own)."
    )
    poll_max_pages: int = Field(
        10, description="Pages a poll fetches at most; a longer walk resumes at the next poll."
    )
    poll_max_requests_per_minute: float = Field(
        60.0, description="Requests per minute to each API, all its sources together."
    )
    poll_backoff_initial_seconds: float = Field(
        2.0, description="First wait after a failed poll; doubled (with jitter) per failure."
    )
    poll_backoff_max_seconds: float = Field(300.0, description="Longest wait after failures.")
    poll_request_timeout_seconds: float = Field(
        15.0,
        gt=0,
        description="Deadline of one API request, from connecting to the last byte of the "
        "answer (a body dripping within each read's timeout still ends there).",
    )
    poll_max_response_bytes: int = Field(
        10 * 1024 * 1024,
        gt=0,
        description="Largest API answer read (decoded); a larger one fails the poll unread.",
    )
    poll_retry_after_max_seconds: float = Field(
        3600.0, ge=0, description="Longest wait a 429's Retry-After can impose on a source."
    )
    poll_seen_ids: int = Field(
        5000, description="Ids of published items remembered per source (deduplication)."
    )
    publish_timeout_seconds: float = Field(
        30.0, description="Wait for the broker's acknowledgement of a page before retrying it."
    )
    youtube_api_key: str = Field("", description="YouTube Data API v3 key.")
    youtube_api_base_url: str = Field(KINDS["youtube"].default_base_url, description="API URL.")
    google_business_access_token: str = Field(
        "", description="OAuth 2.0 access token of the Google Business Profile API."
    )
    google_business_api_base_url: str = Field(
        KINDS["google_reviews"].default_base_url, description="API URL."
    )
    tripadvisor_api_key: str = Field("", description="TripAdvisor Content API key.")
    tripadvisor_api_base_url: str = Field(
        KINDS["tripadvisor"].default_base_url, description="API URL."
    )

    def sources(self) -> list[PollSource]:
        text = self.poll_sources.strip()
        if text and not text.startswith(("[", "-")) and "\n" not in text:
            path = Path(text)
            if not path.is_file():
                raise ValueError(f"POLL_SOURCES: no file {path}")
            text = path.read_text()
        return parse_sources(text)

    def base_url(self, source: PollSource) -> str:
        if source.base_url:
            return source.base_url
        return str(getattr(self, KINDS[source.kind].base_url_setting))

    def credential(self, source: PollSource) -> str:
        return str(getattr(self, KINDS[source.kind].credential_setting))
