"""Run the workspace: ``socialcrm-workspace --help`` lists its settings."""

from socialcrm.runtime import run_service
from socialcrm_workspace.app import build_app
from socialcrm_workspace.settings import WorkspaceSettings


def main() -> None:
    run_service(
        WorkspaceSettings,
        build_app,
        "Workspace: the agents' queues by SLA deadline, the customer across channels, replies.",
    )


if __name__ == "__main__":
    main()
