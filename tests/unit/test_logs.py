"""Shared logging set-up (no I/O)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from socialcrm.logs import PYMONGO_LOGGERS, configure_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in PYMONGO_LOGGERS}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, saved in levels.items():
        logging.getLogger(name).setLevel(saved)


@pytest.mark.usefixtures("restored_logging")
def test_the_database_driver_never_logs_commands_even_at_debug() -> None:
    configure_logging("test", "DEBUG")
    assert logging.getLogger("socialcrm_crm_sink").isEnabledFor(logging.DEBUG)
    for name in ("pymongo.command", "pymongo.connection", "pymongo.serverSelection"):
        assert not logging.getLogger(name).isEnabledFor(logging.DEBUG)
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
    assert logging.getLogger("pymongo.command").isEnabledFor(logging.WARNING)
