"""Wiring of the webhooks process: network webhooks in, Interaction events out.

The request pipeline is ``handlers.WebhookHandlers``; its routes are in ``api``.
"""

from __future__ import annotations

import functools
import logging
import time

from fastapi import FastAPI

from socialcrm import contract
from socialcrm.kafka.producer import EventProducer
from socialcrm.runtime import TopicsReady, create_app
from socialcrm_ingest.security.doors import Doors
from socialcrm_ingest.webhooks.api import add_webhook_routes
from socialcrm_ingest.webhooks.dedup import RecentIds
from socialcrm_ingest.webhooks.handlers import WebhookHandlers
from socialcrm_ingest.webhooks.publishing import publish_all
from socialcrm_ingest.webhooks.settings import IngestSettings

log = logging.getLogger(__name__)


def build_app(settings: IngestSettings) -> FastAPI:
    # First, so that a missing secret stops the start-up before anything else.
    doors = Doors(settings)
    unverified = doors.unverified()
    if unverified:
        log.error(
            "INSECURE: WEBHOOKS_INSECURE_LOCAL is on and %s accept unsigned calls from anyone; "
            "for local development only, never in production",
            ", ".join(unverified),
            extra={"unverified_channels": unverified},
        )
    producer = EventProducer(settings)
    app = create_app(
        settings,
        [producer],
        before_start=[TopicsReady(settings, contract.all_topics())],
        title="Social CRM ingest",
        description="Webhooks of the social networks, normalized into `social.interactions.v1`.",
    )
    handlers = WebhookHandlers(
        settings,
        doors,
        functools.partial(publish_all, producer, wait_seconds=settings.publish_timeout_seconds),
        RecentIds(settings.dedup_cache_size),
        clock=time.time,
    )
    add_webhook_routes(app, handlers)
    return app
