"""Run the CRM sink: ``socialcrm-crm-sink --help`` lists its settings."""

from socialcrm.runtime import run_service
from socialcrm_crm_sink.app import build_app
from socialcrm_crm_sink.settings import CrmSinkSettings


def main() -> None:
    run_service(
        CrmSinkSettings,
        build_app,
        "CRM sink: records routed interactions and replies as contacts, timelines and cases "
        "in MongoDB, serves the CRM API and pushes changes to an external CRM.",
    )


if __name__ == "__main__":
    main()
