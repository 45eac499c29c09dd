"""Shared plumbing of the Social CRM services.

- ``socialcrm.v1``: the generated contract (from ``proto/``);
- ``settings``, ``logs``, ``telemetry``: configuration, JSON logs, traces;
- ``contract``: topics, keys, encoding and validation of events;
- ``kafka``: producer, at-least-once stream processor, dead-letter topics;
- ``http``: health, readiness and metrics endpoints, uvicorn runner.
"""
