"""Run the pollers: ``socialcrm-ingest-poller --help`` lists the sources format and settings."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import ValidationError

from socialcrm.runtime import run_service
from socialcrm_ingest.poller.app import build_app
from socialcrm_ingest.poller.settings import PollerSettings

DESCRIPTION = """\
Ingest pollers: poll YouTube comment threads, Google Business Profile reviews and
TripAdvisor location reviews, and publish them as normalized interactions.

POLL_SOURCES is a JSON (or YAML) list of sources, or the path of a file holding one:
  [{"name": "acme-launch-video", "kind": "youtube", "target": "dQw4w9WgXcQ"},
   {"name": "acme-channel", "kind": "youtube", "target": "channel:UC..."},
   {"name": "acme-paris-google", "kind": "google_reviews",
    "target": "accounts/123/locations/456", "brand": "acme"},
   {"name": "acme-paris-tripadvisor", "kind": "tripadvisor", "target": "187147",
    "language": "fr", "interval_seconds": 900}]
Fields: name (unique; key of the saved cursor), kind (youtube, google_reviews,
tripadvisor), target, and optionally brand, interval_seconds, base_url, language.
Credentials: YOUTUBE_API_KEY, GOOGLE_BUSINESS_ACCESS_TOKEN, TRIPADVISOR_API_KEY."""


def main() -> None:
    def build(settings: PollerSettings) -> FastAPI:
        try:
            return build_app(settings)
        except (ValueError, ValidationError) as exc:
            raise SystemExit(f"socialcrm-ingest-poller: {exc}") from exc

    run_service(PollerSettings, build, DESCRIPTION)


if __name__ == "__main__":
    main()
