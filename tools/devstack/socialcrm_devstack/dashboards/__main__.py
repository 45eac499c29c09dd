"""Write the Grafana dashboards and the Prometheus console views from panels.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from socialcrm_devstack.dashboards.consoles import console_files
from socialcrm_devstack.dashboards.grafana import dashboard_json
from socialcrm_devstack.dashboards.panels import DASHBOARDS
from socialcrm_devstack.infra import REPO

GRAFANA_DIR = REPO / "deploy" / "grafana" / "dashboards"
CONSOLES_DIR = REPO / "deploy" / "prometheus" / "consoles"


def generated_files() -> dict[Path, str]:
    """Path -> text of every generated file, computed in memory."""
    files = {GRAFANA_DIR / f"{d.slug}.json": dashboard_json(d) for d in DASHBOARDS}
    files.update({CONSOLES_DIR / name: text for name, text in console_files(DASHBOARDS).items()})
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    files = generated_files()
    # A dashboard removed from panels.py leaves no stale file behind.
    for stale in [*GRAFANA_DIR.glob("*.json"), *CONSOLES_DIR.glob("*.html")]:
        if stale not in files:
            stale.unlink()
    CONSOLES_DIR.mkdir(parents=True, exist_ok=True)
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    print(
        f"generated {len(files)} files into {GRAFANA_DIR.relative_to(REPO)} and "
        f"{CONSOLES_DIR.relative_to(REPO)}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
