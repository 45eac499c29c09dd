"""``socialcrm-dev``: the local stack of the Social CRM platform.

socialcrm-dev demo     run everything with a live demo stream (bin/demo)
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from socialcrm_devstack import demo
from socialcrm_devstack.infra import CACHE
from socialcrm_devstack.scenarios import SCENARIOS


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="socialcrm-dev",
        description="The Social CRM platform on this machine: a real Kafka broker, a "
        "MongoDB-protocol server and the five services, installed by bin/setup.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run_demo = commands.add_parser(
        "demo",
        help="run the platform with a live stream of French and English posts",
        description="Start Kafka, the database, the five services, Prometheus and\n"
        "Alertmanager; play a scenario: a realistic stream of customer messages (X,\n"
        "Facebook, Instagram, Messenger, email, chat, community) to ingest's webhooks,\n"
        "agents answering through the router's reply API, a viral burst that pages;\n"
        "print a live summary until Ctrl-C (or --duration).",
        epilog="scenarios (--scenario):\n"
        + "\n".join(
            textwrap.fill(
                f"{s.name:<8}{s.description}",
                width=88,
                initial_indent="  ",
                subsequent_indent=" " * 10,
            )
            for s in SCENARIOS.values()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run_demo.add_argument(
        "--scenario",
        choices=list(SCENARIOS),
        default="story",
        help="what the demo plays (listed below) [story]",
    )
    run_demo.add_argument(
        "--rate", type=float, default=5.0, help="steady posts per second (the burst adds 3x) [5]"
    )
    run_demo.add_argument(
        "--duration", type=float, default=0.0, help="stop after this many seconds [0: until Ctrl-C]"
    )
    run_demo.add_argument(
        "--keep-data", action="store_true", help="keep the previous run's topics and CRM data"
    )
    run_demo.add_argument(
        "--ephemeral-ports",
        action="store_true",
        help="use free ports instead of 9092, 27017 and 8001-8005",
    )
    run_demo.add_argument("--seed", type=int, default=None, help="seed of the demo stream")
    run_demo.add_argument(
        "--work-dir",
        type=Path,
        default=CACHE / "demo",
        help="folder of the broker's and database's data and of the logs [.cache/demo]",
    )
    args = parser.parse_args()
    raise SystemExit(
        demo.run(
            demo.DemoOptions(
                rate=args.rate,
                duration=args.duration,
                scenario=args.scenario,
                keep_data=args.keep_data,
                ephemeral_ports=args.ephemeral_ports,
                seed=args.seed,
                work_dir=args.work_dir,
            )
        )
    )


if __name__ == "__main__":
    main()
