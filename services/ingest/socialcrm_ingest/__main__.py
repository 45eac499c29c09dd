"""Run the ingest service: ``socialcrm-ingest --help`` lists its settings."""

from fastapi import FastAPI

from socialcrm.logs import configure_logging
from socialcrm.runtime import run_service
from socialcrm_ingest.security.doors import MissingWebhookSecrets
from socialcrm_ingest.webhooks.app import build_app
from socialcrm_ingest.webhooks.settings import IngestSettings


def build_or_refuse(settings: IngestSettings) -> FastAPI:
    """The app, or exit naming the missing secrets: webhooks fail closed."""
    # Logging first: what the doors say at start-up goes to the JSON log like the rest.
    configure_logging(settings.service_name, settings.log_level)
    try:
        return build_app(settings)
    except MissingWebhookSecrets as exc:
        raise SystemExit(f"ingest refuses to start: {exc}") from None


def main() -> None:
    run_service(
        IngestSettings,
        build_or_refuse,
        "Ingest: receives the networks' webhooks and publishes normalized interactions.",
    )


if __name__ == "__main__":
    main()
