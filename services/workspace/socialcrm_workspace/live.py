"""Changes of the view, fanned out to the pages' live-update streams (Server-Sent Events).

Each stream has a bounded queue of its own: a browser that does not keep up loses the
detail and gets one ``resync`` instead, after which it refetches its whole list. A stream
carries only the changes of the queues its agent may work (``Change.visible_to``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable

from socialcrm.errors import DomainError
from socialcrm_workspace.metrics import STREAMS
from socialcrm_workspace.view import Change

QUEUE_SIZE = 256
KEEPALIVE_SECONDS = 5.0
RESYNC = Change("", "", "resync")


class TooManyStreams(DomainError):
    status_code = 503


class ChangeHub:
    def __init__(self, max_streams: int) -> None:
        self.max_streams = max_streams
        # Each stream's queue, with the queue or team names its agent may work.
        self._queues: dict[asyncio.Queue[Change], frozenset[str]] = {}

    def publish(self, changes: Iterable[Change]) -> None:
        for change in changes:
            for queue, allowed in self._queues.items():
                if not change.visible_to(allowed):
                    continue
                if queue.full():
                    while not queue.empty():
                        queue.get_nowait()
                    queue.put_nowait(RESYNC)
                else:
                    queue.put_nowait(change)

    async def stream(self, lifetime: float, allowed: frozenset[str]) -> AsyncIterator[str]:
        """The text of one SSE stream for an agent working ``allowed``: its changes as
        ``change`` events, comments to keep the connection alive, and an end after
        ``lifetime`` seconds (the browser reconnects)."""
        if len(self._queues) >= self.max_streams:
            raise TooManyStreams(f"more than {self.max_streams} live-update streams open")
        queue: asyncio.Queue[Change] = asyncio.Queue(QUEUE_SIZE)
        self._queues[queue] = allowed
        STREAMS.set(len(self._queues))
        return self._events(queue, lifetime)

    async def _events(self, queue: asyncio.Queue[Change], lifetime: float) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        ends = loop.time() + lifetime
        try:
            yield "retry: 1000\n\n"
            while (left := ends - loop.time()) > 0:
                try:
                    change = await asyncio.wait_for(queue.get(), min(left, KEEPALIVE_SECONDS))
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                data = {
                    "event_id": change.event_id,
                    "conversation_id": change.conversation_id,
                    "kind": change.kind,
                }
                yield f"event: change\ndata: {json.dumps(data)}\n\n"
        finally:
            self._queues.pop(queue, None)
            STREAMS.set(len(self._queues))
