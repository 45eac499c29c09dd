"""Chaos: three routers and two kpi instances under steady load for about two and a half
minutes, with a kill -9, a router and a kpi paused past the session timeout (SIGSTOP, then
SIGCONT once the group has rebalanced without them) and a broker restart, in a seeded
random order (``tests.fixtures.chaos``). The checker derives the truth from the input
topics (``tests.fixtures.chaos_truth``) and finds nothing: every due SLA level escalated
once, no answered interaction escalated, every KPI window exact, no record dead-lettered.

``CHAOS_SEED`` replays another schedule; ``bench/chaos.py`` runs the same for longer.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fixtures.chaos import chaos_pool, load_of, run
from tests.fixtures.chaos_faults import REQUIRED, schedule
from tests.fixtures.service_pool import ServicePool

pytestmark = pytest.mark.e2e

LOAD_SECONDS = 150
PER_SECOND = 4
# Seed 3: kill -9 of a router and of a kpi, a kpi and a router paused, the broker restarted
# mid-load.
SEED = int(os.environ.get("CHAOS_SEED", "3"))
LOAD = load_of(LOAD_SECONDS, PER_SECOND)


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServicePool]:
    with chaos_pool(tmp_path_factory.mktemp("chaos"), LOAD) as services:
        yield services


async def test_faults_under_load_lose_repeat_and_dead_letter_nothing(pool: ServicePool) -> None:
    faults = schedule(SEED, LOAD_SECONDS)
    assert set(REQUIRED) <= {f.what for f in faults}
    outcome = await run(pool, LOAD, faults, SEED)
    print(f"\n{outcome.printed}\nlogs in {pool.work_dir / 'logs'}")
    (pool.work_dir / "checker.txt").write_text(outcome.printed)
    assert not any("skipped" in line for line in outcome.faults), outcome.faults
    assert outcome.verdict.passed, f"\n{outcome.printed}\n(logs in {pool.work_dir / 'logs'})"
