"""The backfill command against the real broker: published once, bad lines dead-lettered,
an interrupted import resumed without loss or duplicate."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from socialcrm import contract
from socialcrm.v1 import interaction_pb2
from socialcrm_ingest.backfill.importer import Options, run_backfill
from socialcrm_ingest.backfill.settings import BackfillSettings
from socialcrm_ingest.dead_letters import DLQ_TOPIC, INPUT_TOPIC
from tests.conftest import Infra
from tests.fixtures.kafka import read_to_end
from tests.fixtures.waiting import eventually

pytestmark = pytest.mark.integration


async def interactions_of_brand(bootstrap: str, brand: str) -> list[interaction_pb2.Interaction]:
    found = []
    for record in await read_to_end(bootstrap, INPUT_TOPIC):
        interaction = contract.decode(interaction_pb2.Interaction, record.value)
        if interaction.brand == brand:
            found.append(interaction)
    return found


def review_line(review_id: int) -> str:
    return json.dumps(
        {
            "id": review_id,
            "lang": "en",
            "location_id": 187147,
            "published_date": "2026-11-16T06:10:33Z",
            "rating": 1 + review_id % 5,
            "title": "Stay",
            "text": f"Review number {review_id}",
            "user": {"username": "WanderingSam"},
            "url": f"https://www.tripadvisor.com/ShowUserReviews-r{review_id}.html",
        }
    )


@pytest.fixture
def jsonl(tmp_path: Path) -> tuple[Path, list[int]]:
    base = uuid.uuid4().int % 10**12
    ids = [base + n for n in range(12)]
    lines = [review_line(review_id) for review_id in ids]
    lines[4] = '{"id": 5, "rating": "great"'  # line 5: truncated JSON
    lines.insert(8, "")  # blank lines are skipped, not bad
    path = tmp_path / "tripadvisor.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path, [review_id for n, review_id in enumerate(ids) if n != 4]


async def test_an_interrupted_backfill_resumes_without_loss_or_duplicate(
    infra: Infra, jsonl: tuple[Path, list[int]]
) -> None:
    path, good_ids = jsonl
    brand = f"backfill-{uuid.uuid4().hex[:8]}"
    settings = BackfillSettings(
        kafka_bootstrap_servers=infra.kafka.bootstrap, backfill_batch_size=4
    )
    options = Options(
        path=path,
        fmt="tripadvisor-reviews",
        brand=brand,
        checkpoint=path.with_suffix(".checkpoint.json"),
        limit=6,
    )
    stderr = io.StringIO()

    first = await run_backfill(options, settings, stderr)
    assert first.stopped_early
    assert (first.lines, first.published, first.bad) == (6, 5, 1)
    assert f"{path}:5: invalid JSON" in stderr.getvalue()
    checkpoint = json.loads(options.checkpoint.read_text())
    assert checkpoint["files"][str(path.resolve())]["line"] == 6

    options.limit = None
    second = await run_backfill(options, settings, stderr)
    assert not second.stopped_early
    assert second.resumed_lines == 6
    assert (second.lines, second.published, second.bad) == (6, 6, 0)
    assert "rerun" not in second.text(dry_run=False, dlq=DLQ_TOPIC)

    published = await interactions_of_brand(infra.kafka.bootstrap, brand)
    per_event = Counter(i.header.event_id for i in published)
    assert set(per_event.values()) == {1}
    assert sorted(int(i.header.external_id) for i in published) == sorted(good_ids)
    assert all(1 <= i.rating <= 5 for i in published)

    dead = []
    for record in await read_to_end(infra.kafka.bootstrap, DLQ_TOPIC):
        letter = contract.DeadLetter()
        letter.ParseFromString(record.value or b"")
        if letter.reason.startswith(f"{path.resolve()}:5:"):
            dead.append((letter, dict(record.headers)))
    [(letter, headers)] = dead
    assert "invalid JSON" in letter.reason
    assert letter.error_type == "invalid_payload"
    assert letter.source_topic == INPUT_TOPIC
    assert letter.original_value == b'{"id": 5, "rating": "great"'
    assert headers["dlq.reason"].decode() == letter.reason


async def test_a_rerun_after_the_end_publishes_nothing_again(
    infra: Infra, jsonl: tuple[Path, list[int]]
) -> None:
    path, good_ids = jsonl
    brand = f"backfill-{uuid.uuid4().hex[:8]}"
    settings = BackfillSettings(kafka_bootstrap_servers=infra.kafka.bootstrap)
    options = Options(
        path=path.parent, fmt="tripadvisor-reviews", brand=brand, checkpoint=path.parent / "cp.json"
    )
    done = await run_backfill(options, settings, io.StringIO())
    assert done.published == len(good_ids)
    again = await run_backfill(options, settings, io.StringIO())
    assert (again.lines, again.published) == (0, 0)
    published = await interactions_of_brand(infra.kafka.bootstrap, brand)
    assert len(published) == len(good_ids)


async def test_a_dry_run_validates_without_publishing(
    infra: Infra, jsonl: tuple[Path, list[int]]
) -> None:
    path, good_ids = jsonl
    brand = f"backfill-{uuid.uuid4().hex[:8]}"
    options = Options(
        path=path,
        fmt="tripadvisor-reviews",
        brand=brand,
        checkpoint=path.with_suffix(".dry.json"),
        dry_run=True,
    )
    summary = await run_backfill(
        options, BackfillSettings(kafka_bootstrap_servers="127.0.0.1:1"), io.StringIO()
    )
    assert (summary.published, summary.bad) == (len(good_ids), 1)
    assert "(dry run)" in summary.text(dry_run=True, dlq=DLQ_TOPIC)
    assert not options.checkpoint.exists()
    assert await interactions_of_brand(infra.kafka.bootstrap, brand) == []


def test_the_command_imports_envelopes_and_prints_a_summary(infra: Infra, tmp_path: Path) -> None:
    brand = f"backfill-{uuid.uuid4().hex[:8]}"
    review_id = uuid.uuid4().int % 10**12
    path = tmp_path / "mixed.jsonl"
    path.write_text(
        json.dumps({"format": "tripadvisor-reviews", "payload": json.loads(review_line(review_id))})
        + "\n"
        + json.dumps({"format": "myspace", "payload": {}})
        + "\n"
    )
    command = Path(sys.executable).with_name("socialcrm-ingest-backfill")
    done = subprocess.run(
        [str(command), str(path), "--brand", brand],
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": infra.kafka.bootstrap},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "1 published" in done.stdout
    assert "1 bad line(s) sent to social.interactions.v1.dlq" in done.stdout
    assert f"{path}:2: unknown format 'myspace'" in done.stderr
    assert "\r" not in done.stderr  # not a terminal: plain progress lines
    assert Path(f"{path}.checkpoint.json").exists()
    [interaction] = asyncio.run(interactions_of_brand(infra.kafka.bootstrap, brand))
    assert interaction.header.external_id == str(review_id)


def test_a_backfill_stopped_by_sigterm_resumes_without_loss_or_duplicate(
    infra: Infra, tmp_path: Path
) -> None:
    brand = f"backfill-{uuid.uuid4().hex[:8]}"
    base = uuid.uuid4().int % 10**12
    path = tmp_path / "many.jsonl"
    path.write_text("".join(review_line(base + n) + "\n" for n in range(10_000)))
    checkpoint = Path(f"{path}.checkpoint.json")
    command = [
        str(Path(sys.executable).with_name("socialcrm-ingest-backfill")),
        str(path),
        "--format",
        "tripadvisor-reviews",
        "--brand",
        brand,
    ]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": infra.kafka.bootstrap,
        "BACKFILL_BATCH_SIZE": "50",
    }
    running = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        # Polled often: SIGTERM must land while the import still runs.
        eventually(
            lambda: checkpoint.exists() or running.poll() is not None,
            30,
            what="a checkpoint written",
            every=0.02,
        )
        assert running.poll() is None, running.communicate()
        running.send_signal(signal.SIGTERM)
        stdout, stderr = running.communicate(timeout=30)
    finally:
        running.kill()
    assert running.returncode == 130, stderr
    assert "interrupted; rerun to continue" in stdout
    stopped_at = json.loads(checkpoint.read_text())["files"][str(path.resolve())]["line"]
    assert 0 < stopped_at < 10_000

    resumed = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"{stopped_at} line(s) done by earlier runs" in resumed.stdout

    published = asyncio.run(interactions_of_brand(infra.kafka.bootstrap, brand))
    per_id = Counter(int(i.header.external_id) for i in published)
    assert set(per_id) == {base + n for n in range(10_000)}
    assert set(per_id.values()) == {1}
