"""Fuzzing ingest's HTTP API from its own OpenAPI schema: no generated request gets a 5xx.

The app runs in-process against the real broker (a broker that is up must never make it
answer 503), with signatures unchecked so that the generated bodies reach the normalisers.
Schemathesis generates requests that follow the schema and requests that break it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.python.asgi import shutdown_lifespans

from socialcrm_ingest.app import build_app
from socialcrm_ingest.settings import IngestSettings
from tests.conftest import Infra

pytestmark = pytest.mark.integration


@schemathesis.serializer("message/rfc822")
def rfc822(_: schemathesis.SerializationContext, value: Any) -> bytes:
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else b""


@schemathesis.serializer("application/x-ndjson")
def ndjson(_: schemathesis.SerializationContext, value: Any) -> bytes:
    return json.dumps(value).encode() + b"\n"


@pytest.fixture(scope="module")
def ingest_api(infra: Infra) -> Iterator[schemathesis.BaseSchema]:
    app = build_app(
        IngestSettings(
            kafka_bootstrap_servers=infra.kafka.bootstrap,
            meta_verify_token="fuzz-token",
            max_body_bytes=20_000,
            dedup_cache_size=1_000,
            # A slow acknowledgement on a busy test machine is not the failure looked for here.
            publish_timeout_seconds=30.0,
        )
    )
    # Loading the schema starts the app (producer included); it runs until the teardown.
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    shutdown_lifespans()


@pytest.mark.parametrize(
    ("mode", "examples"),
    [(schemathesis.GenerationMode.POSITIVE, 300), (schemathesis.GenerationMode.NEGATIVE, 200)],
)
def test_no_generated_request_gets_a_server_error(
    ingest_api: schemathesis.BaseSchema, mode: schemathesis.GenerationMode, examples: int
) -> None:
    @given(case=ingest_api.as_strategy(mode))
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def request(case: schemathesis.Case[Any]) -> None:
        response = case.call()
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code} "
            f"{response.text[:500]}\n{case.as_curl_command()}"
        )

    request()
