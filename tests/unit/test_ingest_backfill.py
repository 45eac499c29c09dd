from __future__ import annotations

import asyncio
import io
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from socialcrm_ingest.backfill.__main__ import main as backfill_main
from socialcrm_ingest.backfill.checkpoint import (
    CheckpointError,
    Position,
    default_checkpoint,
    load_checkpoint,
    save_checkpoint,
)
from socialcrm_ingest.backfill.importer import Options, run_backfill
from socialcrm_ingest.backfill.lines import LineError, input_files, interactions_of_line
from socialcrm_ingest.backfill.settings import BackfillSettings
from socialcrm_ingest.poller.__main__ import main as poller_main
from tests.fixtures.payloads import x_tweet_event

NOW = datetime(2026, 11, 16, 11, 0, tzinfo=UTC)
TRIPADVISOR_REVIEW = {
    "id": 1034567891,
    "lang": "en",
    "published_date": "2026-11-16T06:10:33Z",
    "rating": 2,
    "text": "Room not cleaned.",
    "user": {"username": "WanderingSam"},
}


def test_a_line_in_the_named_format() -> None:
    [interaction] = interactions_of_line(
        json.dumps(TRIPADVISOR_REVIEW).encode(), "tripadvisor-reviews", "acme", NOW
    )
    assert interaction.rating == 2
    assert interaction.brand == "acme"


def test_an_envelope_names_its_format_and_brand() -> None:
    line = json.dumps(
        {"format": "x-account-activity", "payload": x_tweet_event("42"), "brand": "globex"}
    )
    [interaction] = interactions_of_line(line.encode(), None, "acme", NOW)
    assert interaction.header.external_id == "42"
    assert interaction.brand == "globex"


@pytest.mark.parametrize(
    ("line", "fmt", "reason"),
    [
        (b"{not json", "tripadvisor-reviews", "invalid JSON"),
        (b'{"payload": {}}', None, "format is missing"),
        (b'{"format": "myspace", "payload": {}}', None, "unknown format 'myspace'"),
        (b'{"format": "tripadvisor-reviews"}', None, "payload is missing"),
        (b'{"id": 1, "rating": 9}', "tripadvisor-reviews", "review.rating"),
    ],
)
def test_bad_lines_say_why(line: bytes, fmt: str | None, reason: str) -> None:
    with pytest.raises(LineError, match=reason):
        interactions_of_line(line, fmt, "acme", NOW)


def test_the_same_post_gets_the_same_event_id_as_live_input() -> None:
    line = json.dumps(TRIPADVISOR_REVIEW).encode()
    first = interactions_of_line(line, "tripadvisor-reviews", "acme", NOW)
    again = interactions_of_line(line, "tripadvisor-reviews", "acme", datetime.now(UTC))
    assert first[0].header.event_id == again[0].header.event_id


def test_checkpoints_round_trip_and_inputs_are_found(tmp_path: Path) -> None:
    (tmp_path / "b.jsonl").write_text("{}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.jsonl").write_text("{}\n")
    (tmp_path / "notes.txt").write_text("skip me")
    assert [p.name for p in input_files(tmp_path)] == ["b.jsonl", "a.jsonl"]
    checkpoint = default_checkpoint(tmp_path / "b.jsonl")
    assert checkpoint.name == "b.jsonl.checkpoint.json"
    assert load_checkpoint(checkpoint) == {}
    save_checkpoint(checkpoint, {"/x/b.jsonl": Position(3, 120)})
    assert load_checkpoint(checkpoint) == {"/x/b.jsonl": Position(3, 120)}
    with pytest.raises(FileNotFoundError):
        input_files(tmp_path / "missing.jsonl")
    checkpoint.write_text("{not json")
    with pytest.raises(CheckpointError, match="--restart"):
        load_checkpoint(checkpoint)


def test_help_explains_formats_checkpoint_and_dead_letters(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        backfill_main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for expected in ("--dry-run", "--format", "--limit", "youtube-comment-threads", "envelope"):
        assert expected in text
    assert "social.interactions.v1.dlq" in text
    assert "KAFKA_BOOTSTRAP_SERVERS" in text


def test_the_poller_help_lists_the_sources_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["socialcrm-ingest-poller", "--help"])
    with pytest.raises(SystemExit):
        poller_main()
    text = capsys.readouterr().out
    for expected in ("POLL_SOURCES", "google_reviews", "YOUTUBE_API_KEY", "POLL_STATE_TOPIC"):
        assert expected in text


def test_a_dry_run_of_mixed_envelopes_reports_the_bad_line(tmp_path: Path) -> None:
    sample = Path(__file__).resolve().parents[1] / "fixtures" / "backfill" / "mixed.jsonl"
    stderr = io.StringIO()
    summary = asyncio.run(
        run_backfill(
            Options(
                path=sample, fmt=None, brand="acme", checkpoint=tmp_path / "cp.json", dry_run=True
            ),
            BackfillSettings(),
            stderr,
        )
    )
    # A YouTube thread with its reply, a Google review, a TripAdvisor review, a tweet.
    assert (summary.lines, summary.published, summary.bad) == (5, 5, 1)
    assert f"{sample}:4: not a google-business-reviews payload: review.starRating" in (
        stderr.getvalue()
    )
    assert not (tmp_path / "cp.json").exists()
