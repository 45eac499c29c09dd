"""Shared plumbing of the Social CRM services, one concept per module.

- ``socialcrm.v1``: the generated contract (from ``proto/``); ``contract``: topics (event
  and internal), keys, event ids, encoding and validation;
- ``settings``, ``logs``, ``telemetry``: configuration from the environment, JSON logs with
  secrets redacted, traces;
- ``auth``: API keys, scopes and the agent bound to a key; ``errors``: the one error shape;
  ``strict_json``: UTF-8 JSON bodies with each key once;
- ``kafka``: the connection (``kafka.connection``: bootstrap, security, client ids),
  producers, the at-least-once and the transactional stream processors, dead letters;
- ``state``: partition-owned state stores written through to compacted changelogs;
- ``runtime``, ``http_server``, ``lifecycle``: the service runtime (health, readiness,
  metrics, an HTTP server with idle, header and body deadlines) and its components;
- ``mongo``: the CRM database client; ``dlq``: the ``socialcrm-dlq`` tool; ``labels``:
  bounded label values.
"""
