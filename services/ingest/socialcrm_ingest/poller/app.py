"""Wiring of the pollers process (``socialcrm-ingest-poller``): the producer, the cursor
store and one poll loop per source, with /healthz, /readyz and /metrics."""

from __future__ import annotations

import logging

from fastapi import FastAPI

from socialcrm import contract
from socialcrm.kafka.producer import EventProducer
from socialcrm.runtime import TopicsReady, create_app
from socialcrm_ingest.poller.loops import Pollers
from socialcrm_ingest.poller.settings import PollerSettings
from socialcrm_ingest.poller.state import PollStateStore

log = logging.getLogger(__name__)


def build_app(settings: PollerSettings) -> FastAPI:
    sources = settings.sources()
    if not sources:
        log.warning("POLL_SOURCES is empty: nothing to poll")
    producer = EventProducer(settings)
    store = PollStateStore(settings, producer)
    return create_app(
        settings,
        [producer, store, Pollers(settings, producer, store, sources)],
        before_start=[TopicsReady(settings, contract.all_topics())],
        title="Social CRM ingest pollers",
        description="Polls YouTube comment threads and review feeds into `social.interactions.v1`.",
    )
