"""The HTTP face every service shares: /healthz, /readyz, /metrics, one shape of error
answers (``socialcrm.errors``), strict JSON bodies (``socialcrm.strict_json``), and the
uvicorn runner with a deadline on every phase of a connection (``socialcrm.http_server``).

A service is a list of components (producer, consumers, database...) started in
order with the app and stopped in reverse order on shutdown (SIGTERM included).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TypeVar

import uvicorn
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from socialcrm.errors import install_error_handling
from socialcrm.http_server import HttpTimeouts, timed_protocol
from socialcrm.kafka.admin import ensure_topics
from socialcrm.lifecycle import Component
from socialcrm.logs import configure_logging
from socialcrm.settings import ServiceSettings, help_epilog
from socialcrm.strict_json import StrictJsonRoute
from socialcrm.telemetry import configure_tracing

log = logging.getLogger(__name__)

_JSON_OBJECT = {"application/json": {"schema": {"type": "object"}}}


def _alive(component: Component) -> bool:
    return bool(getattr(component, "alive", True))


def create_app(
    settings: ServiceSettings,
    components: Sequence[Component],
    *,
    title: str,
    description: str,
    before_start: Sequence[Component] = (),
) -> FastAPI:
    """A FastAPI app that runs ``components`` for its lifetime and reports on them.

    ``before_start`` components (e.g. topic creation) run first and are not checked.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        started: list[Component] = []
        try:
            for component in [*before_start, *components]:
                await component.start()
                started.append(component)
            log.info("service started", extra={"components": [c.name for c in started]})
            yield
        finally:
            for component in reversed(started):
                try:
                    await component.stop()
                except Exception:
                    log.exception("component failed to stop", extra={"component": component.name})
            log.info("service stopped")

    app = FastAPI(title=title, description=description, lifespan=lifespan)
    # Routes added on the app itself read JSON strictly; a service's APIRouter says so too.
    app.router.route_class = StrictJsonRoute
    install_error_handling(app)

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Liveness: the process is responsive",
        responses={503: {"description": "A component died (named)", "content": _JSON_OBJECT}},
    )
    async def healthz() -> JSONResponse:
        dead = [c.name for c in components if not _alive(c)]
        if dead:
            return JSONResponse({"status": "dead", "dead": dead}, status_code=503)
        return JSONResponse({"status": "ok", "service": settings.service_name})

    @app.get(
        "/readyz",
        tags=["operations"],
        summary="Readiness: broker and database reachable",
        responses={503: {"description": "A check failed (named)", "content": _JSON_OBJECT}},
    )
    async def readyz() -> JSONResponse:
        results = await asyncio.gather(
            *(component.check() for component in components), return_exceptions=True
        )
        checks: dict[str, str] = {}
        for component, result in zip(components, results, strict=True):
            checks[component.name] = "ok" if result is None else "unavailable"
            if result is not None:
                # Anyone may ask: the answer names states, the log keeps the reason.
                log.warning(
                    "readiness check failed",
                    extra={"component": component.name, "error": repr(result)},
                )
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app


S = TypeVar("S", bound=ServiceSettings)


def run_service(
    settings_type: type[S], build_app: Callable[[S], FastAPI], description: str
) -> None:
    """Entrypoint of a service: ``--help`` lists its environment variables, then it serves."""
    parser = argparse.ArgumentParser(
        description=description,
        epilog=help_epilog(settings_type),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.parse_args()
    settings = settings_type()
    serve(build_app(settings), settings)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """Run ``app`` until SIGINT/SIGTERM, then shut down within the grace period."""
    configure_logging(settings.service_name, settings.log_level)
    provider = configure_tracing(settings.service_name)
    try:
        uvicorn.run(
            app,
            host=settings.http_host,
            port=settings.http_port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=int(settings.shutdown_timeout_seconds),
            http=timed_protocol(HttpTimeouts.of(settings)),
        )
    finally:
        provider.shutdown()


class TopicsReady:
    """Start-up step that creates the given topics if they are missing."""

    name = "topics"

    def __init__(self, settings: ServiceSettings, topics: Sequence[str]) -> None:
        self.settings = settings
        self.topics = topics

    async def start(self) -> None:
        await ensure_topics(self.settings, self.topics)

    async def stop(self) -> None:
        return None

    async def check(self) -> None:
        return None
