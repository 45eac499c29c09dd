"""The shared error shape: every error answer, and its OpenAPI documentation."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query
from fastapi.testclient import TestClient
from pydantic import BaseModel, Field
from starlette.requests import ClientDisconnect

from socialcrm.errors import error_responses, install_error_handling
from socialcrm.labels import require_brand

JSON = {"content-type": "application/json"}


class Note(BaseModel):
    text: str = Field(max_length=10)


def app() -> FastAPI:
    api = FastAPI()
    install_error_handling(api)

    @api.get("/v1/things/{thing_id}", responses=error_responses(409))
    async def thing(thing_id: str, brand: Annotated[str | None, Query()] = None) -> dict[str, str]:
        require_brand(brand, {"acme"})
        if thing_id == "gone":
            raise HTTPException(404, f"no thing {thing_id!r}")
        if thing_id == "boom":
            raise RuntimeError("internal detail that must not leak")
        return {"id": thing_id}

    @api.post("/v1/notes")
    async def note(body: Note) -> dict[str, str]:
        return {"text": body.text}

    return api


def test_http_errors_and_validation_errors_have_one_shape() -> None:
    client = TestClient(app(), raise_server_exceptions=False)
    missing = client.get("/v1/things/gone")
    assert (missing.status_code, missing.json()) == (
        404,
        {"detail": "no thing 'gone'", "errors": []},
    )
    unrouted = client.get("/nowhere")
    assert unrouted.status_code == 404
    assert unrouted.json() == {"detail": "Not Found", "errors": []}
    too_long = client.post("/v1/notes", json={"text": "x" * 6000})
    assert too_long.status_code == 422
    body = too_long.json()
    assert isinstance(body["detail"], str)
    assert "body.text" in body["detail"]
    assert body["errors"] == [
        {
            "loc": ["body", "text"],
            "msg": "String should have at most 10 characters",
            "type": "string_too_long",
        }
    ]
    assert "x" * 20 not in too_long.text, "the value sent is not echoed"
    crash = client.get("/v1/things/boom")
    assert crash.status_code == 500
    assert crash.json() == {"detail": "internal error", "errors": []}


def test_a_brand_outside_the_list_is_refused_naming_the_field() -> None:
    client = TestClient(app())
    refused = client.get("/v1/things/a", params={"brand": "b" * 6000})
    assert refused.status_code == 422
    [error] = refused.json()["errors"]
    assert error["loc"] == ["query", "brand"]
    assert "acme" in error["msg"]
    assert "b" * 20 not in refused.text
    assert client.get("/v1/things/a", params={"brand": "acme"}).status_code == 200


def test_openapi_documents_the_error_answers_with_the_shared_schema() -> None:
    schema: dict[str, Any] = app().openapi()
    ref = {"$ref": "#/components/schemas/ErrorResponse"}
    thing = schema["paths"]["/v1/things/{thing_id}"]["get"]["responses"]
    assert {"404", "409", "422"} <= thing.keys()
    for status in ("404", "409", "422"):
        assert thing[status]["content"]["application/json"]["schema"] == ref
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert schema["components"]["schemas"]["ErrorResponse"]["required"] == ["detail"]


def test_openapi_keeps_the_headers_a_route_documents_on_an_error_answer() -> None:
    api = FastAPI()
    install_error_handling(api)
    retry_after = {"Retry-After": {"schema": {"type": "integer"}, "required": True}}

    @api.post("/v1/busy", responses={503: {"description": "Retry later", "headers": retry_after}})
    async def busy() -> dict[str, str]:
        return {}

    busy_answers = api.openapi()["paths"]["/v1/busy"]["post"]["responses"]
    assert busy_answers["503"]["headers"] == retry_after
    assert busy_answers["503"]["description"] == "Retry later"
    assert busy_answers["503"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ErrorResponse"
    }


def test_a_body_that_is_not_json_is_refused_naming_the_decoders_reason() -> None:
    client = TestClient(app())
    broken = client.post("/v1/notes", content=b'{"text": ', headers=JSON)
    assert broken.status_code == 422
    [error] = broken.json()["errors"]
    assert error["type"] == "json_invalid"
    assert error["msg"] == "JSON decode error: Expecting value"


def test_a_client_gone_mid_body_is_no_server_error() -> None:
    api = FastAPI()
    install_error_handling(api)

    @api.post("/v1/upload")
    async def upload() -> None:
        raise ClientDisconnect

    gone = TestClient(api, raise_server_exceptions=False).post("/v1/upload", content=b"x")
    assert gone.status_code == 400
    assert gone.json()["detail"] == "the client left before sending the whole body"
