"""The workspace's HTTP face: pages, forms, live updates, static files. HTTP only.

- Sessions: ``/sign-in`` takes an API key (``socialcrm.auth``), kept server-side with the
  queues the router lets its agent work (asked then: no answer, no sign-in); the browser
  gets a random id in an HttpOnly, SameSite=Strict cookie (Secure unless
  WORKSPACE_COOKIE_SECURE=false), replaced at sign-in.
- Every POST carries the session's CSRF token (``csrf_token``), checked before anything
  else: a form from elsewhere is refused 403.
- Every answer carries a Content-Security-Policy without inline script (``script-src
  'self'``) and the usual hardening headers; pages are never cached.
- Errors of the handlers (``DomainError``) are one error page with their status.
"""

# No "from __future__ import annotations": FastAPI must see the local dependencies in signatures.

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from socialcrm.auth import ApiKeys
from socialcrm.errors import DomainError
from socialcrm_workspace.handlers import (
    InvalidForm,
    NotInWorkspace,
    NotYourQueue,
    QueuesUnknown,
    ReadOnly,
    Workspace,
)
from socialcrm_workspace.i18n import LANGUAGES, MESSAGES, negotiate
from socialcrm_workspace.live import ChangeHub
from socialcrm_workspace.metrics import ACTIONS, SESSIONS
from socialcrm_workspace.pages import STATIC_TYPES, Pages
from socialcrm_workspace.sessions import Session, SessionStore
from socialcrm_workspace.view import Filters

COOKIE = "workspace_session"
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 10
FILTER_MAX_LENGTH = 64
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HARDENING = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
# FastAPI's own API docs page loads its scripts from a CDN: the only page without the CSP.
NO_CSP_PATHS = frozenset({"/docs", "/docs/oauth2-redirect"})

EventId = Annotated[str, Path(min_length=1, max_length=128)]
FilterValue = Annotated[str, Query(max_length=FILTER_MAX_LENGTH)]


class SignInNeeded(DomainError):
    status_code = 401


class CsrfRefused(DomainError):
    status_code = 403


class FormTooLarge(DomainError):
    status_code = 413


class SecurityHeaders:
    """Adds the hardening headers to every answer (pages, fragments, streams, errors)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in NO_CSP_PATHS:
            await self.app(scope, receive, send)
            return

        async def send_hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HARDENING]
            await send(message)

        await self.app(scope, receive, send_hardened)


def local_path(target: str, fallback: str) -> str:
    """``target`` when it is a path of this site, else ``fallback`` (no open redirect)."""
    ok = target.startswith("/") and not target.startswith(("//", "/\\")) and "\\" not in target
    return target if ok and all(c.isprintable() for c in target) else fallback


async def read_form(request: Request, session: Session | None) -> dict[str, str]:
    """The posted form, once its size, encoding and CSRF token are checked."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise InvalidForm("forms are posted as application/x-www-form-urlencoded")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge(f"a form holds at most {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(
            body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidForm(f"a form is UTF-8 with at most {MAX_FORM_FIELDS} fields") from None
    form = {name: values[0] for name, values in fields.items()}
    if session is None or not session.csrf_matches(form.get("csrf_token", "")):
        raise CsrfRefused("the form's CSRF token is missing or not this session's")
    return form


def install_workspace(
    app: FastAPI,
    workspace: Workspace,
    sessions: SessionStore,
    keys: ApiKeys,
    pages: Pages,
    hub: ChangeHub,
    *,
    secure_cookie: bool,
    stream_seconds: float,
    static: dict[str, bytes],
    clock: Callable[[], datetime],
) -> None:
    routes = APIRouter(include_in_schema=False)

    def current(request: Request) -> Session | None:
        return sessions.get(request.cookies.get(COOKIE))

    def signed_in(request: Request) -> Session:
        session = current(request)
        if session is None or not session.signed_in:
            raise SignInNeeded("sign in first")
        return session

    Current = Annotated[Session | None, Depends(current)]
    Agent = Annotated[Session, Depends(signed_in)]

    def language(request: Request, session: Session | None) -> str:
        if session is not None and session.language:
            return session.language
        return negotiate(request.headers.get("accept-language", ""))

    def page(
        request: Request, session: Session | None, template: str, code: int = 200, **context: Any
    ) -> HTMLResponse:
        html = pages.render(
            template,
            session=session,
            language=language(request, session),
            here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            now=clock(),
            **context,
        )
        response = HTMLResponse(html, status_code=code, headers={"Cache-Control": "no-store"})
        if session is not None:
            set_cookie(response, session)
        return response

    def set_cookie(response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            session.session_id,
            httponly=True,
            samesite="strict",
            secure=secure_cookie,
            path="/",
        )

    def see_other(target: str, session: Session | None = None) -> RedirectResponse:
        response = RedirectResponse(target, status_code=303)
        if session is not None:
            set_cookie(response, session)
        return response

    def filters_of(
        queue: FilterValue = "",
        channel: FilterValue = "",
        language: FilterValue = "",
        escalated: FilterValue = "",
    ) -> Filters:
        return Filters(queue=queue, channel=channel, language=language, escalated=escalated == "1")

    FiltersQuery = Annotated[Filters, Depends(filters_of)]

    @app.exception_handler(DomainError)
    async def error_page(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        if isinstance(exc, SignInNeeded) and request.method == "GET":
            return see_other("/sign-in")
        session = current(request)
        messages = MESSAGES[language(request, session)]
        # The workspace's own refusals in the agent's language; the router's and the CRM's
        # (a queue the agent may not work, a rate limit) as they said them.
        known = {
            ReadOnly: "forbidden",
            CsrfRefused: "csrf",
            NotInWorkspace: "not_found",
            NotYourQueue: "not_your_queue",
        }
        key = known.get(type(exc))
        message = messages[key] if key else str(exc)
        response = page(
            request, session, "error.html", exc.status_code, status=exc.status_code, message=message
        )
        response.headers.update(exc.headers or {})
        return response

    @routes.get("/")
    async def home() -> RedirectResponse:
        return see_other("/queue")

    @routes.get("/sign-in")
    async def sign_in_page(request: Request, session: Current) -> HTMLResponse:
        session = session or sessions.new()
        SESSIONS.set(len(sessions))
        return page(request, session, "sign_in.html", failed="")

    @routes.post("/sign-in")
    async def sign_in(request: Request, session: Current) -> Response:
        form = await read_form(request, session)
        presented = form.get("api_key", "").strip()
        principal = keys.authenticate(presented) if presented else None
        if principal is None:
            return page(request, session, "sign_in.html", 401, failed="bad_key")
        try:
            queues = await workspace.queues_of(presented)
        except QueuesUnknown as exc:
            return page(request, session, "sign_in.html", exc.status_code, failed="queues_unknown")
        return see_other("/queue", sessions.sign_in(session, principal, presented, queues))

    @routes.post("/sign-out")
    async def sign_out(request: Request, session: Current) -> Response:
        await read_form(request, session)
        assert session is not None
        sessions.drop(session)
        response = see_other("/sign-in")
        response.delete_cookie(COOKIE, path="/")
        return response

    @routes.post("/language")
    async def switch_language(request: Request, session: Current) -> Response:
        form = await read_form(request, session)
        assert session is not None
        if form.get("language") in LANGUAGES:
            session.language = form["language"]
        return see_other(local_path(form.get("next", ""), "/queue"), session)

    @routes.get("/queue")
    async def queue(request: Request, session: Agent, filters: FiltersQuery) -> HTMLResponse:
        context = pages.queue_context(workspace.queue(session, filters), filters)
        return page(request, session, "queue.html", choices=workspace.choices(session), **context)

    @routes.get("/queue/rows")
    async def queue_rows(request: Request, session: Agent, filters: FiltersQuery) -> HTMLResponse:
        context = pages.queue_context(workspace.queue(session, filters), filters)
        return page(request, session, "_rows.html", **context)

    @routes.get("/events")
    async def events(session: Agent) -> StreamingResponse:
        return StreamingResponse(
            await hub.stream(stream_seconds, session.queues),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @routes.get("/interactions/{event_id}")
    async def conversation(
        request: Request,
        event_id: EventId,
        session: Agent,
        filters: FiltersQuery,
        sent: FilterValue = "",
    ) -> HTMLResponse:
        found = await workspace.conversation(session, event_id, filters)
        context = pages.queue_context([], filters)
        return page(request, session, "conversation.html", conversation=found, sent=sent, **context)

    @routes.get("/interactions/{event_id}/replies")
    async def replies(
        request: Request, event_id: EventId, session: Agent, sent: FilterValue = ""
    ) -> HTMLResponse:
        return page(
            request, session, "_replies.html", item=workspace.item(session, event_id), sent=sent
        )

    @routes.post("/interactions/{event_id}/reply")
    async def reply(request: Request, event_id: EventId, session: Current) -> Response:
        form = await read_form(request, session)
        acting = signed_in(request)
        try:
            reply_id = await workspace.reply(
                acting,
                event_id,
                text=form.get("text", ""),
                is_private=form.get("private") == "1",
                status=form.get("status", ""),
            )
        except DomainError:
            ACTIONS.labels("reply", "refused").inc()
            raise
        ACTIONS.labels("reply", "accepted").inc()
        target = f"/interactions/{quote(event_id, safe='')}?sent={quote(reply_id, safe='')}"
        return see_other(target)

    @routes.post("/interactions/{event_id}/status")
    async def status(request: Request, event_id: EventId, session: Current) -> Response:
        form = await read_form(request, session)
        acting = signed_in(request)
        try:
            await workspace.set_status(acting, event_id, form.get("status", ""))
        except DomainError:
            ACTIONS.labels("status", "refused").inc()
            raise
        ACTIONS.labels("status", "accepted").inc()
        return see_other(local_path(form.get("next", ""), "/queue"))

    @routes.get("/static/{name}")
    async def static_file(name: Annotated[str, Path(max_length=64)]) -> Response:
        if name not in static:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(
            static[name],
            media_type=STATIC_TYPES[name],
            headers={"Cache-Control": "max-age=300"},
        )

    app.include_router(routes)
    app.add_middleware(SecurityHeaders)
