"""Server-side sessions of the workspace (pure: the clock is given).

The browser holds only a random session id (an HttpOnly, SameSite=Strict cookie); the API
key an agent signed in with stays here, and is what the workspace presents to the router
and the CRM on the agent's behalf. Every session carries its own CSRF token, which every
form posts back. A session also holds the queues its agent may work, as the router said
at sign-in (none until then). A session signed in gets a new id (no fixation of an id set
before), and sessions expire after ``lifetime`` or ``idle`` without a request; at most
``max_sessions`` are held, the least recently used going first.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from socialcrm.auth import Principal

SESSION_ID_BYTES = 32
CSRF_BYTES = 32


@dataclass
class Session:
    session_id: str
    csrf_token: str
    created_at: datetime
    seen_at: datetime
    language: str = ""
    principal: Principal | None = None
    api_key: str = field(default="", repr=False)
    # Queue or team names the agent may work (``*``: all), from the router at sign-in.
    queues: frozenset[str] = frozenset()

    @property
    def signed_in(self) -> bool:
        return self.principal is not None

    def can(self, scope: str) -> bool:
        return self.principal is not None and scope in self.principal.scopes

    def csrf_matches(self, presented: str) -> bool:
        return hmac.compare_digest(self.csrf_token.encode(), presented.encode())


class SessionStore:
    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        lifetime: timedelta,
        idle: timedelta,
        max_sessions: int,
    ) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.idle = idle
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def new(self, language: str = "") -> Session:
        now = self.clock()
        session = Session(
            session_id=secrets.token_urlsafe(SESSION_ID_BYTES),
            csrf_token=secrets.token_urlsafe(CSRF_BYTES),
            created_at=now,
            seen_at=now,
            language=language,
        )
        self._sessions[session.session_id] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, marked as just used; None when unknown or expired."""
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self.clock()
        if now - session.created_at > self.lifetime or now - session.seen_at > self.idle:
            del self._sessions[session_id]
            return None
        session.seen_at = now
        self._sessions.move_to_end(session_id)
        return session

    def sign_in(
        self,
        before: Session | None,
        principal: Principal,
        api_key: str,
        queues: frozenset[str],
    ) -> Session:
        """A new session for ``principal`` working ``queues`` (new id, new CSRF token);
        ``before`` is dropped."""
        language = before.language if before else ""
        if before is not None:
            self.drop(before)
        session = self.new(language)
        session.principal = principal
        session.api_key = api_key
        session.queues = queues
        return session

    def drop(self, session: Session) -> None:
        self._sessions.pop(session.session_id, None)

    def expire(self) -> None:
        now = self.clock()
        for session_id, session in list(self._sessions.items()):
            if now - session.created_at > self.lifetime or now - session.seen_at > self.idle:
                del self._sessions[session_id]
