"""The end of the pipeline: when every accepted event is in the CRM timeline and counted
by kpi."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

from socialcrm_bench.metrics import kpi_total

POLL_SECONDS = 1.0


@dataclass
class Drain:
    recorded: dict[str, tuple[datetime, datetime]] = field(default_factory=dict)
    kpi_count: float = 0.0
    seconds: float = 0.0
    timed_out: bool = False


async def read_timeline(
    timeline: AsyncCollection[dict[str, Any]], wanted: set[str]
) -> dict[str, tuple[datetime, datetime]]:
    """(ingested_at, recorded_at) of the wanted events found in the timeline.

    One projected scan, matched here: the database is private to the run, and the local
    server evaluates ``$in`` over a long id list far more slowly than it scans.
    """
    found: dict[str, tuple[datetime, datetime]] = {}
    cursor = timeline.find({}, {"_id": 0, "event_id": 1, "ingested_at": 1, "recorded_at": 1})
    async for doc in cursor:
        if doc.get("event_id") in wanted:
            found[doc["event_id"]] = (doc["ingested_at"], doc["recorded_at"])
    return found


async def wait_for_crm(
    mongo_uri: str, kpi_url: str, event_ids: Sequence[str], bound_s: float
) -> Drain:
    """Wait until the timeline holds every event and kpi has counted them all, or until
    ``bound_s`` seconds passed; then read the timeline documents of the events.

    The poll is a cheap document count (the database only holds this run's events);
    the documents are read once the count is reached, or at the bound.
    """
    drain = Drain()
    wanted = set(event_ids)
    expected = len(wanted)
    started = time.monotonic()
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        timeline = mongo["socialcrm"]["timeline"]
        async with httpx.AsyncClient() as http:
            while True:
                count = await timeline.estimated_document_count()
                drain.kpi_count = await kpi_total(http, kpi_url)
                out_of_time = time.monotonic() - started >= bound_s
                if count >= expected or out_of_time:
                    drain.recorded = await read_timeline(timeline, wanted)
                    complete = len(drain.recorded) >= expected and drain.kpi_count >= expected
                    if complete or out_of_time:
                        drain.timed_out = not complete
                        break
                await asyncio.sleep(POLL_SECONDS)
    finally:
        await mongo.close()
    drain.seconds = time.monotonic() - started
    return drain
