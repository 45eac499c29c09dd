"""Fuzzing ingest's HTTP API from its own OpenAPI schema: no generated request gets a 5xx,
and every answer (status, content type, body) is one the schema documents.

The app runs in-process against the real broker (a broker that is up must never make it
answer 503) with every channel's secret set, as in production. Each generated body is
signed as its network signs it, so that it reaches the normalizers; one run goes unsigned,
to check the refusals. Schemathesis generates requests that follow the schema (positive)
and requests that break it (negative).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import schemathesis
from schemathesis.python.asgi import shutdown_lifespans
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from socialcrm_devstack.webhook_signing import signed_headers
from socialcrm_ingest.webhooks.app import build_app
from socialcrm_ingest.webhooks.settings import IngestSettings
from tests.conftest import Infra
from tests.fixtures.fuzzing import CHECKS, failures_of

# Fuzzed answers also carry the headers their status documents (503: Retry-After).
INGEST_CHECKS = [*CHECKS, response_headers_conformance]

pytestmark = pytest.mark.integration

POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
# Environment variable of each secret (as webhook_signing names them) and its value.
SECRETS = {
    "X_CONSUMER_SECRET": "fuzz-x",
    "X_STREAM_WEBHOOK_SECRET": "fuzz-x-stream",
    "META_APP_SECRET": "fuzz-meta",
    "FORUM_WEBHOOK_SECRET": "fuzz-forum",
    "EMAIL_WEBHOOK_SECRET": "fuzz-email",
    "CHAT_WEBHOOK_SECRET": "fuzz-chat",
}


@schemathesis.serializer("message/rfc822")
def rfc822(_: schemathesis.SerializationContext, value: Any) -> bytes:
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else b""


@schemathesis.serializer("application/x-ndjson")
def ndjson(_: schemathesis.SerializationContext, value: Any) -> bytes:
    return json.dumps(value).encode() + b"\n"


def sign(request: Any) -> Any:
    """``requests`` auth hook: the signature headers of the serialised body."""
    body = request.body or b""
    body = body.encode() if isinstance(body, str) else body
    request.headers.update(signed_headers(urlsplit(request.url).path, body, SECRETS))
    return request


def ingest_schema(infra: Infra, publish_timeout_seconds: float) -> schemathesis.BaseSchema:
    """The schema of an ingest app started in-process; it runs until shutdown_lifespans."""
    app = build_app(
        IngestSettings(
            kafka_bootstrap_servers=infra.kafka.bootstrap,
            x_consumer_secret=SECRETS["X_CONSUMER_SECRET"],
            x_stream_webhook_secret=SECRETS["X_STREAM_WEBHOOK_SECRET"],
            meta_app_secret=SECRETS["META_APP_SECRET"],
            forum_webhook_secret=SECRETS["FORUM_WEBHOOK_SECRET"],
            email_webhook_secret=SECRETS["EMAIL_WEBHOOK_SECRET"],
            chat_webhook_secret=SECRETS["CHAT_WEBHOOK_SECRET"],
            meta_verify_token="fuzz-token",
            max_body_bytes=20_000,
            dedup_cache_size=1_000,
            publish_timeout_seconds=publish_timeout_seconds,
        )
    )
    # Loading the schema starts the app (producer included).
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module")
def ingest_api(infra: Infra) -> Iterator[schemathesis.BaseSchema]:
    # A slow acknowledgement on a busy test machine is not the failure looked for here.
    yield ingest_schema(infra, publish_timeout_seconds=30.0)
    shutdown_lifespans()


@pytest.fixture(scope="module")
def impatient_ingest_api(infra: Infra) -> Iterator[schemathesis.BaseSchema]:
    # No broker acknowledges within a nanosecond: every call that publishes gets its 503.
    yield ingest_schema(infra, publish_timeout_seconds=1e-9)
    shutdown_lifespans()


# Mode, examples, signer: about 200 cases in all keep the suite's time modest.
RUNS: list[tuple[schemathesis.GenerationMode, int, Callable[[Any], Any] | None]] = [
    (POSITIVE, 100, sign),
    (NEGATIVE, 60, sign),
    (POSITIVE, 40, None),
]


@pytest.mark.parametrize(
    ("mode", "examples", "signer"),
    RUNS,
    ids=["positive-signed", "negative-signed", "positive-unsigned"],
)
def test_generated_requests_get_documented_answers_and_no_server_error(
    ingest_api: schemathesis.BaseSchema,
    mode: schemathesis.GenerationMode,
    examples: int,
    signer: Callable[[Any], Any] | None,
) -> None:
    answers: Counter[tuple[str, str, int]] = Counter()

    def record(_: object, response: Any, case: schemathesis.Case[Any]) -> None:
        answers[(case.method, case.path, response.status_code)] += 1

    failures = failures_of(ingest_api, mode, examples, checks=[*INGEST_CHECKS, record], sign=signer)
    print(mode.value, "signed" if signer else "unsigned", sorted(answers.items()))
    assert not failures, f"{len(failures)} failing cases:\n\n" + "\n\n".join(failures[:20])
    webhook_calls = {status for (method, _, status) in answers if method == "POST"}
    if signer is None:
        # Unsigned calls are refused before their body is read as an event.
        assert webhook_calls <= {401, 413}, answers
    elif mode is POSITIVE:
        # The signatures hold, so the generated bodies reach the normalizers and the broker.
        assert 200 in webhook_calls, answers


def test_an_unacknowledged_call_gets_the_documented_503(
    impatient_ingest_api: schemathesis.BaseSchema,
) -> None:
    post: dict[str, Any] = {
        "type": "post",
        "id": "fuzz-unacknowledged-1",
        "thread_id": "fuzz-thread-1",
        "author": {"username": "fuzz-customer"},
        "text": "Where is my order?",
        "created_at": datetime.now(UTC).isoformat(),
    }
    case = impatient_ingest_api["/v1/webhooks/forum"]["POST"].Case(
        body=post, media_type="application/json"
    )
    response = case.call(auth=sign)

    assert response.status_code == 503, response.text
    # Schemathesis gives the headers lower-cased, each with its list of values.
    assert [int(value) for value in response.headers["retry-after"]] == [5]
    assert "retry later" in response.json()["detail"]
    case.validate_response(
        response,
        checks=[
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
        ],
    )
