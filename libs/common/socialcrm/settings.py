"""Settings every service reads from its environment, with defaults that work locally."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Common settings; each service subclasses it and adds its own fields.

    Every field is read from the upper-case environment variable of the same name,
    e.g. ``KAFKA_BOOTSTRAP_SERVERS``.
    """

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    service_name: str = Field("socialcrm", description="Name in logs, traces and metrics.")
    kafka_bootstrap_servers: str = Field("localhost:9092", description="Comma-separated brokers.")
    kafka_client_id_suffix: str = Field("", description="Appended to client ids (replica name).")
    http_host: str = Field("0.0.0.0", description="Address of the health/metrics/API server.")
    http_port: int = Field(8000, description="Port of the health/metrics/API server.")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    topic_partitions: int = Field(6, description="Partitions of topics this service creates.")
    topic_replication_factor: int = Field(1, description="Replication of created topics.")
    # Events hold personal data that erasure cannot reach inside Kafka: they must expire.
    topic_retention_hours: float = Field(
        168.0,
        gt=0,
        description="Retention of the event topics and their .dlq topics it creates "
        "(retention.ms): an erased person's events leave Kafka within this time plus a day.",
    )
    # Bounds on a state store's restore (socialcrm.state.changelog): see changelog_configs.
    state_segment_ms: int = Field(
        600_000, gt=0, description="segment.ms of the changelog topics a service creates."
    )
    state_min_cleanable_dirty_ratio: float = Field(
        0.1, gt=0, le=1, description="min.cleanable.dirty.ratio of its changelog topics."
    )
    state_max_compaction_lag_ms: int = Field(
        900_000, gt=0, description="max.compaction.lag.ms of its changelog topics."
    )
    consumer_max_batch: int = Field(500, description="Records fetched per poll.")
    # Kafka's default message.max.bytes, which the local broker keeps: a record (key, value,
    # headers and batch overhead) larger than this is refused by the broker, so the producer
    # refuses it first and ingest answers 413 before publishing.
    kafka_max_message_bytes: int = Field(
        1048588,
        gt=0,
        description="Largest record the producer sends; match the brokers' message.max.bytes.",
    )
    shutdown_timeout_seconds: float = Field(20.0, description="Grace period on SIGTERM.")


class MongoSettings(ServiceSettings):
    """Settings of services that use the CRM database."""

    # retryWrites=false: the local MongoDB-protocol server slows retryable writes down;
    # production sets MONGODB_URI to its replica set with the driver's defaults.
    mongodb_uri: str = Field(
        "mongodb://localhost:27017/?retryWrites=false", description="MongoDB connection string."
    )
    mongodb_database: str = Field("socialcrm", description="Database of the CRM.")


class ApiSettings(ServiceSettings):
    """Settings of services whose API reads or changes customer data (see socialcrm.auth)."""

    api_keys: SecretStr = Field(
        SecretStr(""),
        description='API keys, "<key>=<scope>:<agent id>;..." with scope read, agent or admin '
        "(each implies the ones before); empty: every /v1 call answers 401.",
    )


def help_epilog(settings_type: type[ServiceSettings]) -> str:
    """The environment variables a service reads, with their defaults, for ``--help``."""
    lines = ["environment variables (default in brackets):"]
    for name, field in settings_type.model_fields.items():
        lines.append(f"  {name.upper():<32} {field.description or ''} [{field.default}]")
    lines.append(
        "  OTEL_TRACES_EXPORTER             otlp, console or none [none]; see OpenTelemetry docs"
    )
    return "\n".join(lines)
