"""A synchronous check that a Kafka broker answers metadata requests."""

from __future__ import annotations

import asyncio

from socialcrm.kafka import connection
from socialcrm.settings import ServiceSettings


def broker_answers(settings: ServiceSettings) -> bool:
    """Whether the brokers of ``settings`` answer a client connected as ``settings`` say."""

    async def probe() -> bool:
        async with connection.started_admin(settings, "probe", request_timeout_ms=3000) as admin:
            await admin.list_topics()
            return True

    try:
        return asyncio.run(probe())
    except Exception:
        return False
