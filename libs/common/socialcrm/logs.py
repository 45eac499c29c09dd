"""Structured JSON logs on stdout, one object per line, with the active trace id."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is logged.
_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

# The driver's loggers (PyMongo 4.9+): commands, connections, server selection, topology.
PYMONGO_LOGGERS = (
    "pymongo",
    "pymongo.client",
    "pymongo.command",
    "pymongo.connection",
    "pymongo.serverSelection",
    "pymongo.topology",
)
# HTTP clients log each request's URL (query string included) at INFO, and headers at DEBUG.
HTTP_CLIENT_LOGGERS = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)

REDACTED = "[redacted]"
# Credentials as they appear in URLs (``key=``), quoted mappings (``'api_key': '...'``) and
# headers: the name is kept, the value goes. Each pattern is a literal name, a separator and
# one character class: linear on any text.
_SECRET_PATTERNS = (
    re.compile(
        r"(?i)\b((?:api[_-]?)?key|access_token|refresh_token|client_secret|password|token)"
        r"(=|[\"']\s*:\s*[\"']?)([^&\s\"',;}\[\]]+)"
    ),
    re.compile(r"(?i)\b(authorization|proxy-authorization)([\"']?\s*[:=]\s*[\"']?)([^\"'\r\n]+)"),
    re.compile(r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=-]+)"),
)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` without credential values: named ones (``key=``, ``Authorization:``,
    ``Bearer``...) and each of ``secrets`` wherever it occurs. Redacting twice changes
    nothing more."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(rf"\1\2{REDACTED}", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites a record's message, string extras and traceback without credentials.

    On a handler it covers every line that handler prints; on a logger, every handler
    (tests' captures included) receives the record already redacted.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        # Short values would blank out ordinary words; the patterns still cover them.
        self.secrets = tuple(sorted({s for s in secrets if len(s) >= 8}, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            # A malformed call: its format string alone, never the arguments unredacted.
            message = str(record.msg)
        record.msg = redact(message, self.secrets)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD_ATTRS and isinstance(value, str):
                setattr(record, key, redact(value, self.secrets))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_text:  # already formatted, and redacted, by RedactSecrets
            entry["exc"] = record.exc_text
        elif record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The Kafka client logs every rebalance and connection at INFO: keep only its warnings.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, root.level))
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # A request line is no event worth a log line, and its URL may carry an API key.
    for client_logger in ("httpx", "httpcore"):
        logging.getLogger(client_logger).setLevel(max(logging.WARNING, root.level))
    # At DEBUG PyMongo logs every command with the documents and filters sent and the
    # replies: handles, emails and message texts. No personal data in logs at any level,
    # so the driver stays at WARNING or above whatever LOG_LEVEL says.
    for driver_logger in PYMONGO_LOGGERS:
        logging.getLogger(driver_logger).setLevel(max(logging.WARNING, root.level))
