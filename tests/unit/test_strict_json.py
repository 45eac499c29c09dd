"""Strict JSON bodies: UTF-8 only, each key once per object, the problem named."""

from __future__ import annotations

import json

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from socialcrm.errors import install_error_handling
from socialcrm.strict_json import StrictJsonError, StrictJsonRoute, loads

DOCUMENT = '{"text": "café", "tags": [{"a": 1}, {"a": 2}]}'


def test_utf8_json_reads_as_json_does() -> None:
    assert loads(DOCUMENT.encode()) == json.loads(DOCUMENT)
    assert loads(DOCUMENT) == json.loads(DOCUMENT)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-8-sig"])
def test_other_encodings_are_refused_by_name(encoding: str) -> None:
    with pytest.raises(StrictJsonError, match=f"must be UTF-8.*not {encoding}"):
        loads(DOCUMENT.encode(encoding))


def test_bytes_that_are_not_utf8_are_refused_with_their_place() -> None:
    with pytest.raises(StrictJsonError, match="not valid UTF-8 at byte 10"):
        loads(b'{"text": "\xff"}')


@pytest.mark.parametrize(
    "text", ['{"a": 1, "a": 2}', '[{"b": {"a": 1, "a": 1}}]', '{"a": 1, "b": {}, "a": 1}']
)
def test_a_repeated_key_is_refused_at_any_depth(text: str) -> None:
    with pytest.raises(StrictJsonError, match="duplicate key") as refused:
        loads(text.encode())
    assert isinstance(refused.value, ValueError)


def test_other_errors_stay_json_s_own() -> None:
    with pytest.raises(json.JSONDecodeError, match="Expecting value") as refused:
        loads(b'{"a": ')
    assert not isinstance(refused.value, StrictJsonError)


class Note(BaseModel):
    text: str


def test_a_strict_route_answers_422_naming_the_problem_not_the_content() -> None:
    api = FastAPI()
    install_error_handling(api)
    routes = APIRouter(route_class=StrictJsonRoute)

    @routes.post("/notes")
    async def note(body: Note) -> dict[str, str]:
        return {"text": body.text}

    api.include_router(routes)
    client = TestClient(api)
    json_type = {"content-type": "application/json"}
    assert client.post("/notes", content=b'{"text": "a"}', headers=json_type).json() == {
        "text": "a"
    }
    repeated = client.post("/notes", content=b'{"text": "a", "text": "secret"}', headers=json_type)
    assert repeated.status_code == 422
    assert "duplicate key" in repeated.json()["detail"]
    assert "secret" not in repeated.text
    wide = client.post("/notes", content='{"text": "a"}'.encode("utf-16"), headers=json_type)
    assert wide.status_code == 422
    assert "must be UTF-8" in wide.json()["detail"]
