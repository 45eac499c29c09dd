"""API keys (pure parsing and lookup) and the FastAPI dependency, in process."""

# No "from __future__ import annotations": FastAPI must see the local dependencies in signatures.

import hmac
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI

from socialcrm.auth import ApiKeys, InvalidApiKeys, Principal
from socialcrm.settings import ApiSettings

READ_KEY = "r3ad-key-0123456789"
AGENT_KEY = "ag3nt-key-0123456789"
ADMIN_KEY = "adm1n-key-0123456789+/=="
SPEC = (
    f"{READ_KEY}=read:dashboard; {AGENT_KEY}=agent:marie.dupont@brand.fr;{ADMIN_KEY}=admin:ops-1;"
)


def test_each_key_is_bound_to_its_agent_and_its_scope_implies_the_lower_ones() -> None:
    keys = ApiKeys.parse(SPEC)
    assert len(keys) == 3
    assert keys.authenticate(READ_KEY) == Principal("dashboard", frozenset({"read"}))
    assert keys.authenticate(AGENT_KEY) == Principal(
        "marie.dupont@brand.fr", frozenset({"read", "agent"})
    )
    assert keys.authenticate(ADMIN_KEY) == Principal("ops-1", frozenset({"read", "agent", "admin"}))
    assert keys.authenticate("unknown-key-0123456789") is None
    assert keys.authenticate(READ_KEY[:-1]) is None


def test_no_keys_means_no_principal() -> None:
    keys = ApiKeys.parse(" ; ")
    assert len(keys) == 0
    assert keys.authenticate("") is None
    assert len(ApiKeys.from_settings(ApiSettings())) == 0


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("s3cret-key-0123456789", "entry 1: expected <key>=<scope>:<agent id>"),
        ("s3cret-key-0123456789=admin", "entry 1: expected <key>=<scope>:<agent id>"),
        (f"{READ_KEY}=read:a;s3cret-key-0123456789=root:bob", "entry 2: the scope must be"),
        ("s3cret-key-0123456789=read,agent:bob", "entry 1: the scope must be"),
        ("s3cret-key-0123456789=agent:", "entry 1: the agent id must be"),
        ("s3cret-key-0123456789=agent:" + "a" * 65, "entry 1: the agent id must be"),
        ("s3cret-key-0123456789=agent:bob smith", "entry 1: the agent id must be"),
        ("s3cret=agent:bob", "entry 1: the key must be 12 to 256 characters"),
        ("s3cret key 0123456789=agent:bob", "entry 1: the key must be"),
        ("s3cret-key-0123456789=agent:a;s3cret-key-0123456789=read:b", "entry 2: repeats"),
    ],
)
def test_a_malformed_entry_is_refused_without_showing_the_key(spec: str, complaint: str) -> None:
    with pytest.raises(InvalidApiKeys, match=complaint) as refused:
        ApiKeys.parse(spec)
    message = str(refused.value)
    assert "s3cret" not in message
    assert READ_KEY not in message


def test_the_settings_hide_the_keys() -> None:
    settings = ApiSettings(api_keys=SPEC)
    assert AGENT_KEY not in repr(settings)
    assert AGENT_KEY not in str(settings.api_keys)
    assert len(ApiKeys.from_settings(settings)) == 3


def test_every_key_is_compared_with_fixed_length_digests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = ApiKeys.parse(SPEC)
    compared: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    # A match on the first key still compares the others: the time does not tell which
    # key matched, nor how long or how close the presented one is.
    for presented in (READ_KEY, "x", "y" * 5000):
        compared.clear()
        keys.authenticate(presented)
        assert compared == [(32, 32)] * 3


def app_with(keys: ApiKeys) -> FastAPI:
    app = FastAPI()

    @app.get("/read")
    async def read(principal: Annotated[Principal, Depends(keys.require("read"))]) -> str:
        return principal.agent_id

    @app.post("/agent")
    async def act(principal: Annotated[Principal, Depends(keys.require("agent"))]) -> str:
        return principal.agent_id

    @app.delete("/admin")
    async def admin(principal: Annotated[Principal, Depends(keys.require("admin"))]) -> str:
        return principal.agent_id

    return app


async def call(app: FastAPI, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, headers=headers)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def test_the_dependency_answers_401_without_a_known_key_and_403_without_the_scope() -> None:
    app = app_with(ApiKeys.parse(SPEC))
    for headers in ({}, bearer("unknown-key-0123456789"), {"Authorization": f"Basic {READ_KEY}"}):
        refused = await call(app, "GET", "/read", headers)
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
    forbidden = await call(app, "POST", "/agent", bearer(READ_KEY))
    assert forbidden.status_code == 403
    assert "'agent' scope" in forbidden.json()["detail"]
    assert (await call(app, "DELETE", "/admin", bearer(AGENT_KEY))).status_code == 403
    assert (await call(app, "GET", "/read", bearer(AGENT_KEY))).json() == "marie.dupont@brand.fr"
    assert (await call(app, "POST", "/agent", {"X-API-Key": AGENT_KEY})).status_code == 200
    assert (await call(app, "DELETE", "/admin", {"X-API-Key": ADMIN_KEY})).json() == "ops-1"


async def test_without_keys_the_api_is_closed() -> None:
    app = app_with(ApiKeys.parse(""))
    assert (await call(app, "GET", "/read", {})).status_code == 401
    assert (await call(app, "GET", "/read", bearer(""))).status_code == 401
    assert (await call(app, "GET", "/read", {"X-API-Key": ""})).status_code == 401


def test_the_openapi_schema_declares_both_ways_of_sending_the_key() -> None:
    schema = app_with(ApiKeys.parse(SPEC)).openapi()
    assert set(schema["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}
    assert schema["paths"]["/agent"]["post"]["security"]
