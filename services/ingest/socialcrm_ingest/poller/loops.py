"""The poll loops: one per source, fetching pages, publishing, then saving the cursor.

A loop fetches pages over HTTP, normalizes them through the format registry, publishes
the new interactions, waits for the broker's acknowledgement and only then saves the
source's cursor (at least once; the stable event ids make a repeated page harmless). The
decisions (what is new, when a walk ends, how long to back off) live in ``schedule``, the
bounded request (size cap, deadline, capped ``Retry-After``) in ``fetch``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka.errors import KafkaError

from socialcrm.kafka.producer import EventProducer
from socialcrm.logs import HTTP_CLIENT_LOGGERS, RedactSecrets
from socialcrm.v1 import interaction_pb2
from socialcrm_ingest.dead_letters import dead_letter_input
from socialcrm_ingest.formats.payload import PayloadError
from socialcrm_ingest.formats.registry import NORMALIZERS
from socialcrm_ingest.poller.fetch import FetchLimits, PollFailure, fetch_json
from socialcrm_ingest.poller.metrics import POLL_INTERACTIONS, POLLS
from socialcrm_ingest.poller.schedule import Entry, RequestPacer, advance, backoff_delay
from socialcrm_ingest.poller.settings import PollerSettings
from socialcrm_ingest.poller.sources import KINDS, PollSource, page_request, split_page
from socialcrm_ingest.poller.state import PollStateStore

log = logging.getLogger(__name__)

POLL_CONSUMER = "ingest-poller"
# Where the API keys could show: the HTTP client's request lines and the failures logged here.
_REDACTED_LOGGERS = (*HTTP_CLIENT_LOGGERS, __name__)


def _fingerprint(item: Any) -> str:
    canonical = json.dumps(item, sort_keys=True, default=str).encode()
    return "invalid:" + hashlib.sha256(canonical).hexdigest()[:24]


class SourcePoller:
    """The poll loop of one source."""

    def __init__(
        self,
        source: PollSource,
        settings: PollerSettings,
        producer: EventProducer,
        store: PollStateStore,
        client: httpx.AsyncClient,
        pacer: RequestPacer,
    ) -> None:
        self.source = source
        self.settings = settings
        self.producer = producer
        self.store = store
        self.client = client
        self.pacer = pacer
        self.brand = source.brand or settings.default_brand
        self.normalize = NORMALIZERS[KINDS[source.kind].format]
        self.cursor = store.cursor(source.name)
        self.stopping = asyncio.Event()
        self.limits = FetchLimits(
            deadline_seconds=settings.poll_request_timeout_seconds,
            max_response_bytes=settings.poll_max_response_bytes,
            max_retry_after_seconds=settings.poll_retry_after_max_seconds,
        )

    async def run(self) -> None:
        failures = 0
        interval = self.source.interval_seconds or self.settings.poll_interval_seconds
        while not self.stopping.is_set():
            try:
                published = await self.poll_once()
            except Exception as exc:
                # Whatever went wrong (a normalizer bug included), the loop lives on.
                if isinstance(exc, PollFailure):
                    failure = exc
                else:
                    log.exception("unexpected poll failure", extra={"source": self.source.name})
                    failure = PollFailure("error", repr(exc))
                failures += 1
                POLLS.labels(self.source.name, failure.outcome).inc()
                delay = failure.retry_after
                if delay is None:
                    delay = backoff_delay(
                        failures,
                        initial=self.settings.poll_backoff_initial_seconds,
                        maximum=self.settings.poll_backoff_max_seconds,
                        jitter=random.random(),
                    )
                log.warning(
                    "poll failed, retrying later",
                    extra={
                        "source": self.source.name,
                        "outcome": failure.outcome,
                        "error": str(failure),
                        "retry_in_s": round(delay, 3),
                    },
                )
            else:
                failures = 0
                POLLS.labels(self.source.name, "ok").inc()
                delay = 0.0 if self.cursor.walking else interval
                if published:
                    log.info("polled", extra={"source": self.source.name, "new": published})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), delay)

    async def poll_once(self) -> int:
        """Walk the new pages; the number of interactions published."""
        published = 0
        pages_left = self.settings.poll_max_pages
        while not self.stopping.is_set():
            pages_left -= 1
            token = self.cursor.page_token
            page = await self._fetch(token)
            try:
                items, next_token = split_page(self.source, page, token)
            except PayloadError as exc:
                raise PollFailure("invalid_payload", str(exc)) from exc
            entries, interactions, invalid = self._read(items)
            step = advance(
                self.cursor,
                entries,
                next_token,
                pages_left=pages_left,
                max_seen=self.settings.poll_seen_ids,
            )
            fresh = [interactions[key] for key in step.fresh if key in interactions]
            try:
                await asyncio.wait_for(
                    self._publish(fresh, [invalid[key] for key in step.fresh if key in invalid]),
                    self.settings.publish_timeout_seconds,
                )
                await asyncio.wait_for(
                    self.store.save(self.source.name, step.cursor),
                    self.settings.publish_timeout_seconds,
                )
            except (KafkaError, TimeoutError) as exc:
                raise PollFailure("broker_error", repr(exc)) from exc
            self.cursor = step.cursor
            published += len(fresh)
            POLL_INTERACTIONS.labels(self.source.name).inc(len(fresh))
            if step.walk_done:
                break
        return published

    def _read(
        self, items: Sequence[Any]
    ) -> tuple[list[Entry], dict[str, interaction_pb2.Interaction], dict[str, tuple[bytes, str]]]:
        """Entries of a page, their interactions, and the items that are not in shape."""
        entries: list[Entry] = []
        interactions: dict[str, interaction_pb2.Interaction] = {}
        invalid: dict[str, tuple[bytes, str]] = {}
        now = datetime.now(UTC)
        for index, item in enumerate(items):
            try:
                normalized = self.normalize(item, self.brand, now)
            except PayloadError as exc:
                key = _fingerprint(item)
                entries.append(Entry(key, None))
                raw = json.dumps(item, default=str).encode()
                invalid[key] = (raw, f"item {index}: {exc}")
                continue
            for interaction in normalized:
                key = interaction.header.external_id
                entries.append(Entry(key, interaction.header.occurred_at.ToDatetime(tzinfo=UTC)))
                interactions[key] = interaction
        return entries, interactions, invalid

    async def _publish(
        self, interactions: list[interaction_pb2.Interaction], invalid: list[tuple[bytes, str]]
    ) -> None:
        futures = [await self.producer.publish(interaction) for interaction in interactions]
        for raw, reason in invalid:
            futures.append(
                await dead_letter_input(
                    self.producer,
                    raw=raw,
                    origin=f"poll {self.source.name}",
                    reason=reason,
                    consumer=POLL_CONSUMER,
                )
            )
        await asyncio.gather(*futures)

    async def _fetch(self, token: str) -> Any:
        request = page_request(
            self.source,
            self.settings.base_url(self.source),
            token,
            self.settings.credential(self.source),
        )
        wait = self.pacer.reserve(time.monotonic())
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            return await fetch_json(self.client, request, self.limits)
        except PollFailure as failure:
            if failure.retry_after is not None:
                self.pacer.hold_off(time.monotonic() + failure.retry_after)
            raise


class Pollers:
    """Component running one poll loop per source for the app's lifetime."""

    name = "pollers"

    def __init__(
        self,
        settings: PollerSettings,
        producer: EventProducer,
        store: PollStateStore,
        sources: Sequence[PollSource],
    ) -> None:
        self.settings = settings
        self.producer = producer
        self.store = store
        self.sources = sources
        self.loops: list[SourcePoller] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None
        self._stopping = False
        # On the loggers themselves, so that every handler gets the records redacted.
        self._redact = RedactSecrets(settings.credential(source) for source in sources)

    async def start(self) -> None:
        for name in _REDACTED_LOGGERS:
            logging.getLogger(name).addFilter(self._redact)
        self._client = httpx.AsyncClient(timeout=self.settings.poll_request_timeout_seconds)
        # One pacer per API: its quota is shared by all the sources polling it.
        pacers = {kind: RequestPacer(self.settings.poll_max_requests_per_minute) for kind in KINDS}
        self.loops = [
            SourcePoller(
                source, self.settings, self.producer, self.store, self._client, pacers[source.kind]
            )
            for source in self.sources
        ]
        self._tasks = [
            asyncio.create_task(loop.run(), name=f"poll:{loop.source.name}") for loop in self.loops
        ]
        log.info("pollers started", extra={"sources": [s.name for s in self.sources]})

    async def stop(self) -> None:
        """Let each loop finish the page in hand (its cursor saved), then close."""
        self._stopping = True
        for loop in self.loops:
            loop.stopping.set()
        if self._tasks:
            _, pending = await asyncio.wait(
                self._tasks, timeout=self.settings.shutdown_timeout_seconds
            )
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        for name in _REDACTED_LOGGERS:
            logging.getLogger(name).removeFilter(self._redact)

    @property
    def alive(self) -> bool:
        return self._stopping or all(not task.done() for task in self._tasks)

    async def check(self) -> None:
        dead = [task.get_name() for task in self._tasks if task.done()]
        if dead:
            raise RuntimeError(f"poll loops stopped: {', '.join(dead)}")
