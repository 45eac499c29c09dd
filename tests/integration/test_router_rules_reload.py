"""The real router app's rules file against the real Kafka broker: an invalid file is
rejected at reload (the previous rules stay active) and stops the router at start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from socialcrm.v1 import routed_pb2
from socialcrm_router.rules import RulesError
from tests.conftest import Infra
from tests.fixtures.kafka import publish
from tests.fixtures.router_app import (
    RULES,
    Setup,
    complaint,
    json_when,
    new_tweet_id,
    read,
    router_setup,
    running,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def setup(infra: Infra, tmp_path: Path) -> Setup:
    return await router_setup(infra, tmp_path)


async def test_an_invalid_rule_file_is_rejected_and_the_previous_rules_stay_active(
    infra: Infra, setup: Setup
) -> None:
    async with running(setup.settings, setup.clock) as router:
        assert (await router.get("/v1/rules")).json()["version"] == "it-1"
        broken = RULES.format(version="it-2", brand=setup.brand).replace(
            "reach_min: 0.6", "reach_min: 6"
        )
        setup.rules_file.write_text(broken)
        bump_mtime(setup.rules_file)
        rules = await json_when(router, "/v1/rules", lambda r: r["last_error"] != "")
        assert rules["version"] == "it-1"
        assert (
            "escalation 'influential-negative' (escalations[0]): field when.reach_min:"
            " Input should be less than or equal to 1"
        ) in rules["last_error"]
        event = complaint(setup, new_tweet_id(), reach=0.1)
        await publish(infra.kafka.bootstrap, event)
        [routed] = await read(
            infra.kafka.bootstrap,
            routed_pb2.RoutedInteraction,
            lambda m: (
                m.header.event_id == event.header.event_id
                and m.routing.rule_id == "french-complaints"
            ),
            expected=1,
        )
        assert routed.routing.rules_version == "it-1"

        setup.rules_file.write_text(RULES.format(version="it-3", brand=setup.brand))
        bump_mtime(setup.rules_file)
        rules = await json_when(router, "/v1/rules", lambda r: r["version"] == "it-3")
        assert rules["last_error"] == ""


async def test_an_invalid_rule_file_at_start_stops_the_router(setup: Setup) -> None:
    setup.rules_file.write_text(
        RULES.format(version="x", brand=setup.brand).replace(
            "queue: customer-service-fr", "queue: cs"
        )
    )
    with pytest.raises(RulesError, match=r"rule 'french-complaints' \(rules\[0\]\): field queue"):
        async with running(setup.settings, setup.clock):
            pass


def bump_mtime(path: Path) -> None:
    """A later modification time, even on file systems with coarse timestamps."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
