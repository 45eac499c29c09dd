"""Run the kpi service: ``socialcrm-kpi --help`` lists its settings."""

from socialcrm.runtime import run_service
from socialcrm_kpi.app import build_app
from socialcrm_kpi.settings import KpiSettings


def main() -> None:
    run_service(
        KpiSettings, build_app, "KPI: windowed KPIs, viral-spike alerts and Prometheus metrics."
    )


if __name__ == "__main__":
    main()
