"""Run the ingest service: ``socialcrm-ingest --help`` lists its settings."""

from socialcrm.http import run_service
from socialcrm_ingest.app import build_app
from socialcrm_ingest.settings import IngestSettings


def main() -> None:
    run_service(
        IngestSettings,
        build_app,
        "Ingest: receives the networks' webhooks and publishes normalised interactions.",
    )


if __name__ == "__main__":
    main()
