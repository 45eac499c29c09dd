"""One shape for every error answer of every service, and its place in the OpenAPI schema.

Every 4xx/5xx body is an ``ErrorResponse``: ``detail`` is always a sentence naming the
field or the limit; ``errors`` lists the fields of a request that failed validation (422),
each with where it was (``loc``), what is wrong (``msg``) and a stable ``type``. The values
sent are never echoed back: they may be large, or personal.

``install_error_handling`` puts the handlers on an app and documents the error answers
of each operation: the ones its route declares, plus 401 and 403 where it needs a
credential, 404 where its path names a resource, 422 where it takes input and 400 where
it takes a body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

log = logging.getLogger(__name__)

METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options", "trace"})
# Operations every service has (health, readiness, metrics): documented by their routes.
OPERATIONS_TAG = "operations"
SCHEMA_REF = "#/components/schemas/ErrorResponse"


class FieldError(BaseModel):
    loc: list[str | int] = Field(
        description='Where the field is, e.g. ["query", "brand"] or ["body", "agent_id"].'
    )
    msg: str = Field(description="What is wrong with it, naming the limit when there is one.")
    type: str = Field(description="Stable kind of error, e.g. string_too_long, missing.")


class ErrorResponse(BaseModel):
    """The body of every error answer."""

    detail: str = Field(description="What went wrong, naming the field or the limit.")
    errors: list[FieldError] = Field(
        default_factory=list, description="Each field that failed validation (422 only)."
    )


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a route that can answer these error statuses."""
    return {
        status: {
            "description": HTTPStatus(status).phrase,
            "content": {"application/json": {"schema": {"$ref": SCHEMA_REF}}},
        }
        for status in statuses
    }


def _where(loc: Iterable[str | int]) -> str:
    return ".".join(str(part) for part in loc)


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    """FastAPI's validation errors without the values sent (``input``, ``ctx``).

    A body that is not JSON keeps the decoder's reason (e.g. a duplicate key, not UTF-8,
    see socialcrm.strict_json): it names the problem, never the content."""
    out = []
    for error in errors:
        loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
        msg = str(error.get("msg", ""))
        reason = (error.get("ctx") or {}).get("error")
        if error.get("type") == "json_invalid" and isinstance(reason, str):
            msg = f"{msg}: {reason}"
        out.append(FieldError(loc=loc, msg=msg, type=str(error.get("type"))))
    return out


def _json(
    status: int, body: ErrorResponse, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


class DomainError(Exception):
    """An error of a service's domain logic that the API answers with ``status_code`` and
    the message as detail: handlers raise it, and api.py needs no try/except of its own."""

    status_code = 400
    headers: Mapping[str, str] | None = None


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return _json(exc.status_code, ErrorResponse(detail=str(exc)), exc.headers)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    return _json(exc.status_code, ErrorResponse(detail=detail), exc.headers)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    detail = "; ".join(f"{_where(e.loc)}: {e.msg}" for e in errors) or "invalid request"
    return _json(422, ErrorResponse(detail=detail, errors=errors))


async def _client_gone(_: Request, exc: Exception) -> JSONResponse:
    # The client left, or was cut off for sending its body too slowly (socialcrm.http_server),
    # before the whole body came: no one reads this answer, and it is no server error.
    return _json(400, ErrorResponse(detail="the client left before sending the whole body"))


async def _server_error(_: Request, exc: Exception) -> JSONResponse:
    # The exception is logged by the server; the caller learns nothing of the internals.
    return _json(500, ErrorResponse(detail="internal error"))


def document_errors(schema: dict[str, Any]) -> None:
    """Give every operation's error answers the ErrorResponse schema, and add the ones
    its shape implies (401/403 with a credential, 404 with path parameters, 422 with input,
    400 with a body)."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    model = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(model.pop("$defs", {}))
    components["ErrorResponse"] = model
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for path_item in schema.get("paths", {}).values():
        for method, operation in path_item.items():
            if method in METHODS and OPERATIONS_TAG not in operation.get("tags", ()):
                _document_operation(operation)


def _document_operation(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    statuses = {int(code) for code in responses if code.isdigit() and int(code) >= 400}
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        statuses.add(422)
    if "requestBody" in operation:
        # A body that cannot be read at all (the client gone mid-body): the framework's 400.
        statuses.add(400)
    if operation.get("security"):
        statuses |= {401, 403}
    if any(p.get("in") == "path" for p in parameters):
        statuses.add(404)
    for status, documented in error_responses(*sorted(statuses)).items():
        # A route's own description and headers of the answer are kept; its body is the
        # shared shape.
        declared = responses.get(str(status), {})
        responses[str(status)] = {
            **documented,
            "description": declared.get("description") or documented["description"],
            **({"headers": declared["headers"]} if "headers" in declared else {}),
        }


def install_error_handling(app: FastAPI) -> None:
    """The handlers of the shared error shape, and an OpenAPI schema that documents it."""
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _server_error)
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document_errors(generate())
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
