"""The CRM API's one exception handler: a domain error becomes the shared error shape."""

from __future__ import annotations

import json

from fastapi import Request

from socialcrm_crm_sink.api import crm_error
from socialcrm_crm_sink.errors import BadTransition, CaseNotFound, TooManyIdentities


async def test_a_domain_error_answers_with_the_status_of_its_class() -> None:
    request = Request({"type": "http", "method": "PATCH", "path": "/v1/cases/c1", "headers": []})
    for error, status in ((CaseNotFound("c1"), 404), (BadTransition("closed", "open"), 409)):
        answer = await crm_error(request, error)
        assert answer.status_code == status
        assert json.loads(bytes(answer.body)) == {"detail": str(error), "errors": []}
    assert (await crm_error(request, TooManyIdentities("c1"))).status_code == 422
