"""Run the CRM sink: ``socialcrm-crm-sink --help`` lists its settings."""

from socialcrm.http import run_service
from socialcrm_crm_sink.app import CrmSinkSettings, build_app


def main() -> None:
    run_service(
        CrmSinkSettings,
        build_app,
        "CRM sink: records routed interactions as contacts, timelines and cases in MongoDB.",
    )


if __name__ == "__main__":
    main()
