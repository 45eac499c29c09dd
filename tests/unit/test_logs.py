"""Shared logging set-up (no I/O)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from socialcrm.logs import (
    PYMONGO_LOGGERS,
    JsonFormatter,
    RedactSecrets,
    configure_logging,
    redact,
)


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    pinned = (*PYMONGO_LOGGERS, "httpx", "httpcore")
    levels = {name: logging.getLogger(name).level for name in pinned}
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


@pytest.mark.usefixtures("restored_logging")
def test_the_http_client_never_logs_its_request_lines() -> None:
    configure_logging("test", "DEBUG")
    for name in ("httpx", "httpcore.http11"):
        assert not logging.getLogger(name).isEnabledFor(logging.INFO)
        assert logging.getLogger(name).isEnabledFor(logging.WARNING)


def test_credentials_are_redacted_wherever_they_show() -> None:
    url = "GET https://api.test/reviews?language=fr&key=TA-123&offset=5 200"
    assert redact(url) == "GET https://api.test/reviews?language=fr&key=[redacted]&offset=5 200"
    assert redact("{'api_key': 'k1', 'access_token': \"t1\"}") == (
        "{'api_key': '[redacted]', 'access_token': \"[redacted]\"}"
    )
    assert (
        redact("(b'Authorization', b'Bearer ya29.x')") == "(b'Authorization', b'Bearer [redacted]')"
    )
    assert redact("Authorization: Basic dXNlcjpwdw==") == "Authorization: [redacted]"
    assert redact("quoted back: s3cret-value-9", ["s3cret-value-9"]) == "quoted back: [redacted]"
    # Ordinary words and page tokens stay.
    assert redact("unknown key: severity, pageToken=p2") == "unknown key: severity, pageToken=p2"


def test_a_redacted_record_keeps_no_secret_in_message_extras_or_traceback() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    handler.addFilter(RedactSecrets(["AIzaSecretKey123"]))
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    try:
        logger.warning(
            "polled %s", "https://x/y?key=AIzaSecretKey123", extra={"error": "k=AIzaSecretKey123"}
        )
        try:
            raise ValueError("https://x/y?key=AIzaSecretKey123")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    printed = stream.getvalue()
    assert "AIzaSecretKey123" not in printed
    assert "key=[redacted]" in printed
    assert "[redacted]]" not in printed
    assert redact(printed) == printed  # redacting again (logger and handler) changes nothing
    assert "ValueError" in printed
