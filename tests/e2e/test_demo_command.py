"""The README's first command: the demo starts everything, streams, summarises, stops cleanly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def test_demo_runs_the_platform_and_shows_events_at_every_stage(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "socialcrm_devstack",
            "demo",
            "--duration",
            "10",
            "--rate",
            "10",
            "--ephemeral-ports",
            "--seed",
            "7",
            "--work-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert "Where to look:" in out
    assert "/v1/webhooks/{x,meta,email,chat,forum}" in out
    final = out.rsplit("events per stage", 1)[1].splitlines()[0]
    counts = dict(item.split("=") for item in final.split())
    assert int(counts["sent"]) > 50
    # Every post that went in came out of every stage.
    assert {counts[stage] for stage in ("ingest", "sentiment", "router", "crm-sink", "kpi")} == {
        counts["sent"]
    }
    channels = out.rsplit("channels", 1)[1].splitlines()[0]
    per_channel = dict(item.split("=") for item in channels.split())
    # The demo stream speaks on every channel, not only X.
    assert sum(int(n) > 0 for n in per_channel.values()) >= 4, channels
    kpis = out.rsplit("KPIs", 1)[1].splitlines()[0]
    assert int(kpis.split("backlog=")[1].split()[0]) > 0, kpis  # nobody answers in the demo
    assert "[demo] stopped" in out
