"""Ports for local servers: below the ephemeral range, never handed out twice, one share
per test worker."""

from __future__ import annotations

import itertools
import socket

import pytest

from socialcrm_devstack import processes
from socialcrm_devstack.processes import PORT_RANGE_ENV, free_ports, port_range
from tests.fixtures.parallel import worker_port_range


def test_ports_come_from_below_the_ephemeral_range_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PORT_RANGE_ENV, raising=False)
    low, high = port_range()
    assert high < 32768
    assert all(low <= port <= high for port in free_ports(5))


def test_a_port_in_use_or_already_handed_out_is_not_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(processes, "_handed_out", set())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = int(busy.getsockname()[1])
        monkeypatch.setenv(PORT_RANGE_ENV, f"{taken}-{taken}")
        with pytest.raises(processes.StartError, match=PORT_RANGE_ENV):
            free_ports(1)
    # Free now, once: this process handed nothing out yet from it, then it did.
    assert free_ports(1) == [taken]
    with pytest.raises(processes.StartError):
        free_ports(1)


def test_each_test_worker_has_its_own_share_of_the_ports() -> None:
    shares = [worker_port_range(f"gw{n}", 4) for n in range(4)]
    bounds = [tuple(int(p) for p in share.split("-")) for share in shares]
    assert all(low <= high for low, high in bounds)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(bounds))
    assert bounds[-1][1] <= processes.DEFAULT_PORT_RANGE[1]
