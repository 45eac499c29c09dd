"""MongoDB connection as a service component, on PyMongo's async API."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import AutoReconnect, ConnectionFailure, ServerSelectionTimeoutError

from socialcrm.settings import MongoSettings

# Failures that go away when the database comes back: retry, never dead-letter.
TRANSIENT_MONGO_ERRORS: tuple[type[BaseException], ...] = (
    AutoReconnect,
    ConnectionFailure,
    ServerSelectionTimeoutError,
)


class MongoDatabase:
    name = "mongodb"

    def __init__(self, settings: MongoSettings) -> None:
        self.client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            settings.mongodb_uri, serverSelectionTimeoutMS=5000, tz_aware=True
        )
        self.db: AsyncDatabase[dict[str, Any]] = self.client[settings.mongodb_database]

    async def start(self) -> None:
        await self.check()

    async def stop(self) -> None:
        await self.client.close()

    async def check(self) -> None:
        await asyncio.wait_for(self.client.admin.command("ping"), timeout=5)
