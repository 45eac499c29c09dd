"""Case transitions (pure); API keys are tested in test_auth.py."""

from __future__ import annotations

import itertools

from socialcrm_crm_sink.policy import can_move


def test_case_lifecycle() -> None:
    path = ["new", "open", "pending_customer", "resolved", "closed"]
    for current, target in itertools.pairwise(path):
        assert can_move(current, target)
    assert not can_move("new", "closed")
    assert not can_move("closed", "open")
    assert can_move("resolved", "open")
