"""The HTML of the workspace: Jinja2 templates shipped in the package, autoescaped.

Customer text is hostile input: every value reaches the page through Jinja2's autoescape
(nothing is marked safe), so a post holding ``<script>`` or ``<img onerror>`` shows as
text; the Content-Security-Policy (api.py) forbids inline script besides. The static files
(one script, one stylesheet) are read from the package once, at start.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, PackageLoader, StrictUndefined

from socialcrm_workspace.i18n import MESSAGES, other_language
from socialcrm_workspace.sessions import Session
from socialcrm_workspace.view import Filters, Item

STATIC_TYPES = {
    "workspace.js": "text/javascript; charset=utf-8",
    "workspace.css": "text/css; charset=utf-8",
}


@dataclass(frozen=True)
class Flags:
    """From which reach and virality an author is influential and a post a viral burst."""

    influential_reach: float
    viral_score: float


def filters_query(filters: Filters) -> str:
    """The query string of ``filters`` (empty ones left out)."""
    pairs = [
        (name, value)
        for name, value in (
            ("queue", filters.queue),
            ("channel", filters.channel),
            ("language", filters.language),
            ("escalated", "1" if filters.escalated else ""),
        )
        if value
    ]
    return urlencode(pairs)


def countdown(deadline: datetime, now: datetime) -> str:
    """``-1:02:03`` style: hours, minutes, seconds left (negative once overdue)."""
    seconds = int((deadline - now).total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{sign}{hours}:{rest // 60:02d}:{rest % 60:02d}"


def static_files() -> dict[str, bytes]:
    folder = resources.files("socialcrm_workspace") / "static"
    return {name: (folder / name).read_bytes() for name in STATIC_TYPES}


class Pages:
    def __init__(self, flags: Flags) -> None:
        self.flags = flags
        self.env = Environment(
            loader=PackageLoader("socialcrm_workspace", "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(
            influential=lambda item: item.reach >= flags.influential_reach,
            viral=lambda item: item.virality >= flags.viral_score,
            deadline_ms=lambda moment: int(moment.timestamp() * 1000),
        )

    def render(
        self,
        template: str,
        *,
        session: Session | None,
        language: str,
        here: str,
        now: datetime,
        **context: Any,
    ) -> str:
        return self.env.get_template(template).render(
            t=MESSAGES[language],
            lang=language,
            other_lang=other_language(language),
            session=session,
            signed_in=session is not None and session.signed_in,
            agent_id=session.principal.agent_id if session and session.principal else "",
            can_act=session is not None and session.can("agent"),
            csrf=session.csrf_token if session else "",
            here=here,
            now=now,
            countdown=lambda deadline: countdown(deadline, now),
            **context,
        )

    def queue_context(self, items: list[Item], filters: Filters) -> dict[str, Any]:
        query = filters_query(filters)
        return {
            "items": items,
            "filters": filters,
            "query": query,
            "query_suffix": f"?{query}" if query else "",
        }
