"""Run the router: ``socialcrm-router --help`` lists its settings."""

from socialcrm.runtime import run_service
from socialcrm_router.app import build_app
from socialcrm_router.settings import RouterSettings


def main() -> None:
    run_service(
        RouterSettings,
        build_app,
        "Router: assigns queue, priority and SLA deadline to every enriched interaction.",
    )


if __name__ == "__main__":
    main()
