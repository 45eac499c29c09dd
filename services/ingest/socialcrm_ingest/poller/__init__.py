"""The pollers process (``socialcrm-ingest-poller``): APIs polled into Interaction events."""
