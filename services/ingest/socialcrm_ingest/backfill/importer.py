"""The import of JSONL files into the pipeline, batch by batch, checkpointed.

Every line goes through the same normalizers as live input (``formats.registry``), so it
is validated and identified alike: a post imported twice, or imported and also received
live, has one event id, and consumers count it once. Lines are published in batches;
after the broker acknowledged a batch, the checkpoint file records each file's line and
byte offset, so a rerun after an interruption continues there. A crash between a batch's
publication and its checkpoint republishes that batch on the rerun, which is harmless for
the same reason. Bad lines are counted, reported with ``file:line`` and the reason, and
dead-lettered; they never stop the import.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from tqdm import tqdm

from socialcrm import contract
from socialcrm.kafka.admin import ensure_topics
from socialcrm.kafka.producer import EventProducer
from socialcrm_ingest.backfill.checkpoint import Position, load_checkpoint, save_checkpoint
from socialcrm_ingest.backfill.lines import LineError, input_files, interactions_of_line, lines_from
from socialcrm_ingest.backfill.report import PlainLines, Summary
from socialcrm_ingest.backfill.settings import BackfillSettings
from socialcrm_ingest.dead_letters import DLQ_TOPIC, INPUT_TOPIC, dead_letter_input

BACKFILL_CONSUMER = "ingest-backfill"
MAX_REPORTED_BAD_LINES = 100


@dataclass
class Options:
    path: Path
    fmt: str | None
    brand: str
    checkpoint: Path
    dry_run: bool = False
    restart: bool = False
    limit: int | None = None


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
            file=self.stderr if tty else PlainLines(self.stderr),
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
            for number, offset, raw in lines_from(file, position):
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
            # A normalizer bug must not stop the import: the line waits in the DLQ for a fix.
            reason = f"normalizer failed: {type(error).__name__}: {error}"
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
    producer = EventProducer(settings, [INPUT_TOPIC, DLQ_TOPIC])
    await producer.start()
    try:
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
