"""``socialcrm-ingest-backfill``: import past posts from JSONL files into the pipeline.

Every line goes through the same normalisers as live input (``channels.NORMALIZERS``),
so it is validated and identified alike: a post imported twice, or imported and also
received live, has one event id, and consumers count it once. Lines are published in
batches; after the broker acknowledged a batch, the checkpoint file records each file's
line and byte offset, so a rerun after an interruption continues there. A crash
between a batch's publication and its checkpoint republishes that batch on the rerun,
which is harmless for the same reason. Bad lines are counted, reported with
``file:line`` and the reason, and dead-lettered; they never stop the import.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from aiokafka.errors import KafkaError
from pydantic import Field
from tqdm import tqdm

from socialcrm import contract
from socialcrm.kafka import EventProducer, ensure_topics
from socialcrm.logs import configure_logging
from socialcrm.settings import ServiceSettings, help_epilog
from socialcrm.v1 import interaction_pb2
from socialcrm_ingest.channels import NORMALIZERS
from socialcrm_ingest.dead_letters import DLQ_TOPIC, INPUT_TOPIC, dead_letter_input
from socialcrm_ingest.payload import PayloadError

BACKFILL_CONSUMER = "ingest-backfill"
MAX_REPORTED_BAD_LINES = 100


class BackfillSettings(ServiceSettings):
    service_name: str = "ingest-backfill"
    default_brand: str = Field("acme", description="Brand of lines that do not name one.")
    backfill_batch_size: int = Field(
        500, description="Lines published between two checkpoints (acknowledged first)."
    )
    publish_timeout_seconds: float = Field(
        60.0, description="Wait for the broker's acknowledgement of a batch before giving up."
    )


class CheckpointError(RuntimeError):
    """The checkpoint file cannot be read."""


class LineError(ValueError):
    """A line that is not an importable post; the message is the reason."""


def interactions_of_line(
    line: bytes, fmt: str | None, default_brand: str, ingested_at: datetime
) -> list[interaction_pb2.Interaction]:
    """The interactions of one JSONL line (pure): a payload of ``fmt``, or an envelope.

    Without ``fmt`` every line is an envelope ``{"format": ..., "payload": ...}`` with an
    optional ``"brand"``.
    """
    try:
        document: Any = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LineError(f"invalid JSON: {exc}") from exc
    brand = default_brand
    if fmt is None:
        if not isinstance(document, dict) or "format" not in document:
            raise LineError('not an envelope {"format": ..., "payload": ...}: format is missing')
        fmt = document["format"]
        if "payload" not in document:
            raise LineError("envelope: payload is missing")
        if not isinstance(document.get("brand", ""), str):
            raise LineError("envelope: brand is not a string")
        brand = document.get("brand") or default_brand
        document = document["payload"]
    if not isinstance(fmt, str) or fmt not in NORMALIZERS:
        raise LineError(f"unknown format {fmt!r}; known: {', '.join(sorted(NORMALIZERS))}")
    try:
        return NORMALIZERS[fmt](document, brand, ingested_at)
    except PayloadError as exc:
        raise LineError(f"not a {fmt} payload: {exc}") from exc


def input_files(path: Path) -> list[Path]:
    """The JSONL files to import: ``path`` itself, or the ``*.jsonl`` files under it, sorted."""
    if path.is_file():
        return [path.resolve()]
    if path.is_dir():
        return sorted(p.resolve() for p in path.rglob("*.jsonl") if p.is_file())
    raise FileNotFoundError(f"no file or directory {path}")


def default_checkpoint(path: Path) -> Path:
    resolved = path.resolve()
    return resolved.with_name(resolved.name + ".checkpoint.json")


@dataclass
class Position:
    line: int = 0
    offset: int = 0


def load_checkpoint(path: Path) -> dict[str, Position]:
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text())
        return {
            name: Position(int(p["line"]), int(p["offset"]))
            for name, p in document["files"].items()
        }
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({exc!r}); fix it, or rerun with --restart"
        ) from exc


def save_checkpoint(path: Path, positions: dict[str, Position]) -> None:
    """Replace the checkpoint atomically: an interruption leaves the old or the new one."""
    document = {
        "files": {name: {"line": p.line, "offset": p.offset} for name, p in positions.items()}
    }
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=1))
    os.replace(temporary, path)


@dataclass
class Summary:
    files: int = 0
    lines: int = 0
    resumed_lines: int = 0
    published: int = 0
    duplicates: int = 0
    empty: int = 0
    bad: int = 0
    bad_lines: list[str] = field(default_factory=list)
    stopped_early: bool = False
    interrupted: bool = False
    seconds: float = 0.0

    def text(self, *, dry_run: bool, dlq: str) -> str:
        rate = self.lines / self.seconds if self.seconds > 0 else 0.0
        verb = "valid interactions" if dry_run else "published"
        parts = [
            f"{self.files} file(s)",
            f"{self.lines} line(s) read in {self.seconds:.1f} s ({rate:.0f} lines/s)",
            f"{self.published} {verb}",
            f"{self.duplicates} duplicate(s) skipped",
            f"{self.empty} line(s) without interactions",
            f"{self.bad} bad line(s)" + ("" if dry_run or not self.bad else f" sent to {dlq}"),
        ]
        if self.resumed_lines:
            parts.append(f"{self.resumed_lines} line(s) done by earlier runs")
        ending = "done"
        if self.interrupted:
            ending = "interrupted; rerun to continue"
        elif self.stopped_early:
            ending = "stopped at --limit; rerun to continue"
        return f"backfill {ending}" + (" (dry run)" if dry_run else "") + ": " + ", ".join(parts)


class _PlainLines:
    """A stream for tqdm when stderr is not a terminal: each refresh on a line of its own."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip("\n")
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


@dataclass
class Options:
    path: Path
    fmt: str | None
    brand: str
    checkpoint: Path
    dry_run: bool = False
    restart: bool = False
    limit: int | None = None


def _lines_from(file: Path, start: Position) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset after the line, line) from ``start`` on."""
    with file.open("rb") as handle:
        handle.seek(start.offset)
        number, offset = start.line, start.offset
        for raw in handle:
            number += 1
            offset += len(raw)
            yield number, offset, raw


class Backfill:
    def __init__(
        self,
        options: Options,
        settings: BackfillSettings,
        producer: EventProducer | None,
        stderr: IO[str],
    ) -> None:
        self.options = options
        self.settings = settings
        self.producer = producer
        self.stderr = stderr
        self.summary = Summary()
        self.published_ids: set[str] = set()
        self.pending: list[asyncio.Future[object]] = []
        self.stop_requested = False

    def request_stop(self) -> None:
        """Stop after the line in hand, its batch acknowledged and checkpointed."""
        self.stop_requested = True

    async def run(self) -> Summary:
        started = time.monotonic()
        options = self.options
        files = input_files(options.path)
        positions: dict[str, Position] = {}
        if not options.dry_run and not options.restart:
            positions = load_checkpoint(options.checkpoint)
        for file in files:
            position = positions.get(str(file))
            if position is not None and position.offset > file.stat().st_size:
                self.stderr.write(f"{file} is shorter than its checkpoint: imported again\n")
                positions[str(file)] = Position()
        self.summary.files = len(files)
        self.summary.resumed_lines = sum(positions.get(str(f), Position()).line for f in files)
        total = sum(f.stat().st_size for f in files)
        done = sum(positions.get(str(f), Position()).offset for f in files)
        tty = self.stderr.isatty()
        bar = tqdm(
            total=total,
            initial=done,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc="backfill",
            file=self.stderr if tty else _PlainLines(self.stderr),
            mininterval=0.2 if tty else 10.0,
            ascii=not tty,
            dynamic_ncols=tty,
        )
        try:
            await self._import(files, positions, bar)
        finally:
            bar.close()
        self.summary.seconds = time.monotonic() - started
        return self.summary

    async def _import(self, files: list[Path], positions: dict[str, Position], bar: Any) -> None:
        batch_lines = 0
        run_lines = 0
        for file in files:
            position = positions.setdefault(str(file), Position())
            reported = position.offset
            for number, offset, raw in _lines_from(file, position):
                if self.stop_requested:
                    self.summary.interrupted = True
                    break
                if self.options.limit is not None and run_lines >= self.options.limit:
                    self.summary.stopped_early = True
                    break
                await self._line(file, number, raw)
                position.line, position.offset = number, offset
                run_lines += 1
                batch_lines += 1
                if batch_lines >= self.settings.backfill_batch_size:
                    await self._flush(positions)
                    reported = self._progress(bar, position.offset, reported)
                    batch_lines = 0
            await self._flush(positions)
            self._progress(bar, position.offset, reported)
            if self.summary.stopped_early or self.summary.interrupted:
                return

    def _progress(self, bar: Any, offset: int, reported: int) -> int:
        """Move the bar by the bytes done since ``reported``; the new reported offset."""
        bar.set_postfix(lines=self.summary.lines, bad=self.summary.bad, refresh=False)
        bar.update(offset - reported)
        return offset

    async def _line(self, file: Path, number: int, raw: bytes) -> None:
        if not raw.strip():
            return
        self.summary.lines += 1
        try:
            interactions = interactions_of_line(
                raw, self.options.fmt, self.options.brand, datetime.now(UTC)
            )
        except LineError as error:
            await self._bad(f"{file}:{number}", raw.rstrip(b"\r\n"), str(error))
            return
        except Exception as error:
            # A normaliser bug must not stop the import: the line waits in the DLQ for a fix.
            reason = f"normaliser failed: {type(error).__name__}: {error}"
            await self._bad(f"{file}:{number}", raw.rstrip(b"\r\n"), reason)
            return
        if not interactions:
            self.summary.empty += 1
        for interaction in interactions:
            event_id = interaction.header.event_id
            if event_id in self.published_ids:
                self.summary.duplicates += 1
                continue
            self.published_ids.add(event_id)
            self.summary.published += 1
            if self.producer is not None:
                self.pending.append(await self.producer.publish(interaction))

    async def _bad(self, origin: str, raw: bytes, reason: str) -> None:
        self.summary.bad += 1
        if len(self.summary.bad_lines) < MAX_REPORTED_BAD_LINES:
            self.summary.bad_lines.append(f"{origin}: {reason}")
            tqdm.write(f"bad line {origin}: {reason}", file=self.stderr)
        if self.producer is not None:
            self.pending.append(
                await dead_letter_input(
                    self.producer,
                    raw=raw,
                    origin=origin,
                    reason=reason,
                    consumer=BACKFILL_CONSUMER,
                )
            )

    async def _flush(self, positions: dict[str, Position]) -> None:
        """Wait for the broker's acknowledgement of the batch, then record the positions."""
        if self.producer is None:
            return
        pending, self.pending = self.pending, []
        await asyncio.wait_for(asyncio.gather(*pending), self.settings.publish_timeout_seconds)
        save_checkpoint(self.options.checkpoint, positions)


async def run_backfill(
    options: Options, settings: BackfillSettings, stderr: IO[str] = sys.stderr
) -> Summary:
    """Import ``options.path``; with ``dry_run`` only validate (no broker needed)."""
    if options.dry_run:
        return await Backfill(options, settings, None, stderr).run()
    await ensure_topics(settings, contract.all_topics())
    producer = EventProducer(settings)
    await producer.start()
    try:
        # Learn both topics' partitions before the first send, one at a time.
        for topic in (INPUT_TOPIC, DLQ_TOPIC):
            await producer.producer.partitions_for(topic)
        backfill = Backfill(options, settings, producer, stderr)
        with _stop_on_signals(backfill):
            return await backfill.run()
    finally:
        await producer.stop()


@contextlib.contextmanager
def _stop_on_signals(backfill: Backfill) -> Iterator[None]:
    """SIGINT or SIGTERM: finish the batch in hand and checkpoint it; a second one aborts."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)

    def stop() -> None:
        backfill.request_stop()
        for number in signals:
            loop.remove_signal_handler(number)

    for number in signals:
        loop.add_signal_handler(number, stop)
    try:
        yield
    finally:
        for number in signals:
            loop.remove_signal_handler(number)


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
