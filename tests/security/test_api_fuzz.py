"""Schemathesis on the OpenAPI schema of every service but ingest (fuzzed in
tests/integration/test_ingest_fuzz.py), against the running platform: requests that follow
the schema and requests that break it get no 5xx, and every answer (status, content type,
body) is one the schema documents. Calls carry the local admin key, so that generated
requests reach the endpoints' validation and handlers, not only the key check.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis

from socialcrm_devstack.stack import LOCAL_CRM_API_KEY, LocalStack
from tests.fixtures.fuzzing import failures_of

pytestmark = [pytest.mark.security, pytest.mark.e2e]

POSITIVE, NEGATIVE = schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE
# Examples per service and mode: about 160 cases a service keeps the suite's time modest.
EXAMPLES = {POSITIVE: 100, NEGATIVE: 60}
KEYED = {"router", "crm-sink"}
# Sentiment and kpi take no input (health, readiness, metrics): nothing to break.
RUNS = [
    *((service, POSITIVE) for service in ("sentiment", "router", "crm-sink", "kpi")),
    *((service, NEGATIVE) for service in ("router", "crm-sink")),
]


@pytest.mark.parametrize(
    ("service", "mode"), RUNS, ids=[f"{service}-{mode.value}" for service, mode in RUNS]
)
def test_generated_requests_get_documented_answers_and_no_server_error(
    platform: LocalStack, service: str, mode: schemathesis.GenerationMode
) -> None:
    base_url = platform.url(service)
    schema = schemathesis.openapi.from_dict(
        httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    )
    headers = {"Authorization": f"Bearer {LOCAL_CRM_API_KEY}"} if service in KEYED else {}
    failures = failures_of(schema, mode, EXAMPLES[mode], base_url=base_url, headers=headers)
    assert not failures, f"{len(failures)} failing cases:\n\n" + "\n\n".join(failures[:20])
