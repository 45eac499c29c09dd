"""Run the pollers: ``socialcrm-ingest-poller --help`` lists the sources format and settings."""

from __future__ import annotations

from fastapi import FastAPI
from pydantic import ValidationError

from socialcrm.runtime import run_service
from socialcrm_ingest.poller.app import build_app
from socialcrm_ingest.poller.settings import PollerSettings
from socialcrm_ingest.poller.sources import KINDS

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
Fields: name (unique; key of the saved cursor), kind, target, and optionally brand,
interval_seconds, base_url, language.
""" + (
    f"Kinds: {', '.join(KINDS)}.\n"
    f"Credentials: {', '.join(kind.credential_setting.upper() for kind in KINDS.values())}."
)


def main() -> None:
    def build(settings: PollerSettings) -> FastAPI:
        try:
            return build_app(settings)
        except (ValueError, ValidationError) as exc:
            raise SystemExit(f"socialcrm-ingest-poller: {exc}") from exc

    run_service(PollerSettings, build, DESCRIPTION)


if __name__ == "__main__":
    main()
