"""``socialcrm-ingest-backfill``: import past posts from JSONL files into the pipeline."""

from __future__ import annotations

import argparse
import asyncio
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from aiokafka.errors import KafkaError

from socialcrm.logs import configure_logging
from socialcrm.settings import help_epilog
from socialcrm_ingest.backfill.checkpoint import CheckpointError, default_checkpoint
from socialcrm_ingest.backfill.importer import Options, run_backfill
from socialcrm_ingest.backfill.settings import BackfillSettings
from socialcrm_ingest.dead_letters import DLQ_TOPIC, INPUT_TOPIC
from socialcrm_ingest.formats.registry import NORMALIZERS

DESCRIPTION = f"""\
Import past posts from a JSONL file, or from every *.jsonl file under a directory, into
{INPUT_TOPIC}, validated and identified like live input.

Each line is either a payload in the format named by --format, or (without --format)
an envelope {{"format": "<format>", "payload": <payload>, "brand": "<optional>"}}.
Formats: {textwrap.fill(", ".join(sorted(NORMALIZERS)), 78, subsequent_indent="  ")}.

Bad lines are reported as file:line with the reason, counted, and sent to
{DLQ_TOPIC}; they do not stop the import. After every acknowledged
batch the checkpoint file records how far each file was imported: rerun the same
command after an interruption to continue (lines republished after a crash keep
their event ids, so consumers count them once).
Ctrl-C or SIGTERM stops after the batch in hand is acknowledged and checkpointed (a
second Ctrl-C aborts at once). Exit status: 0 done (bad lines included), 1 broker
unavailable, 130 interrupted."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="socialcrm-ingest-backfill",
        description=DESCRIPTION,
        epilog=help_epilog(BackfillSettings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", type=Path, help="a JSONL file, or a directory of them")
    parser.add_argument(
        "--format",
        dest="fmt",
        metavar="FORMAT",
        choices=sorted(NORMALIZERS),
        help="format of every line (default: each line is an envelope naming its format)",
    )
    parser.add_argument("--brand", help="brand of the imported posts [DEFAULT_BRAND]")
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help="progress file [<path>.checkpoint.json beside the input]",
    )
    parser.add_argument(
        "--restart", action="store_true", help="ignore the checkpoint and import from the start"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate every line and report, without publishing or touching the checkpoint",
    )
    parser.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="stop after N lines (checkpointed); the next run continues after them",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    settings = BackfillSettings()
    configure_logging(settings.service_name, "WARNING")
    options = Options(
        path=args.path,
        fmt=args.fmt,
        brand=args.brand or settings.default_brand,
        checkpoint=args.checkpoint or default_checkpoint(args.path),
        dry_run=args.dry_run,
        restart=args.restart,
        limit=args.limit,
    )
    try:
        summary = asyncio.run(run_backfill(options, settings))
    except (FileNotFoundError, CheckpointError) as exc:
        raise SystemExit(f"socialcrm-ingest-backfill: {exc}") from exc
    except (KafkaError, TimeoutError) as exc:
        print(
            f"socialcrm-ingest-backfill: the broker at {settings.kafka_bootstrap_servers} did "
            f"not acknowledge ({exc!r}); rerun to continue from the last checkpoint",
            file=sys.stderr,
        )
        raise SystemExit(1) from exc
    except KeyboardInterrupt:
        print(
            "socialcrm-ingest-backfill: interrupted; rerun to continue from the checkpoint",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
    print(summary.text(dry_run=options.dry_run, dlq=DLQ_TOPIC))
    if summary.interrupted:
        raise SystemExit(130)


if __name__ == "__main__":
    main()
