"""A synchronous check that a Kafka broker answers metadata requests."""

from __future__ import annotations

import asyncio

from aiokafka.admin import AIOKafkaAdminClient


def broker_answers(bootstrap: str) -> bool:
    async def probe() -> bool:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
        try:
            await admin.start()
            await admin.list_topics()
            return True
        finally:
            await admin.close()

    try:
        return asyncio.run(probe())
    except Exception:
        return False
