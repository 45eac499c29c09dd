"""Settings every service reads from its environment, with defaults that work locally."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Common settings; each service subclasses it and adds its own fields.

    Every field is read from the upper-case environment variable of the same name,
    e.g. ``KAFKA_BOOTSTRAP_SERVERS``.
    """

    # An error names the variable, never its value: the input holds passwords and keys.
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", hide_input_in_errors=True)

    service_name: str = Field("socialcrm", description="Name in logs, traces and metrics.")
    kafka_bootstrap_servers: str = Field("localhost:9092", description="Comma-separated brokers.")
    kafka_client_id_suffix: str = Field("", description="Appended to client ids (replica name).")
    # How every client authenticates to the brokers (socialcrm.kafka.connection). PLAINTEXT
    # only suits the local stack on loopback: a deployment sets SASL_SSL (README, security).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."
    )
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism of the SASL protocols."
    )
    kafka_sasl_username: str = Field("", description="SASL user (required by SASL_*).")
    kafka_sasl_password: SecretStr = Field(
        SecretStr(""), description="SASL password (required by SASL_*)."
    )
    kafka_ssl_cafile: str = Field(
        "", description="PEM of the CAs trusted for the brokers (SSL, SASL_SSL); empty: system's."
    )
    kafka_ssl_certfile: str = Field("", description="PEM client certificate (mutual TLS).")
    kafka_ssl_keyfile: str = Field("", description="PEM key of KAFKA_SSL_CERTFILE.")
    http_host: str = Field("0.0.0.0", description="Address of the health/metrics/API server.")
    http_port: int = Field(8000, description="Port of the health/metrics/API server.")
    # Every HTTP connection is timed (socialcrm.http_server): a client that opens connections
    # and sends nothing, or trickles a request, cannot hold them open.
    http_idle_timeout_seconds: float = Field(
        5.0, gt=0, description="A connection with no request under way is closed after this."
    )
    http_header_timeout_seconds: float = Field(
        10.0, gt=0, description="Time from a request's first byte to the end of its headers."
    )
    http_body_timeout_seconds: float = Field(
        30.0, gt=0, description="Time from a request's headers to the end of its body (408)."
    )
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
    # A stream's fetch waits for a few records' worth rather than coming back with each one:
    # every fetch costs the broker a request and the processor a step (commit, lag, metrics)
    # whatever it holds. bench/pipeline.py at 600 events/s (one round each, shared machine):
    # broker 0.64 -> 0.53 ms an event, kpi 0.30 -> 0.23, alert path 2.12 -> 1.97 ms of CPU,
    # for at most 100 ms more per hop when the stream is quiet.
    consumer_fetch_min_bytes: int = Field(
        65536, gt=0, description="Bytes a stream's fetch waits for (fetch.min.bytes)."
    )
    consumer_fetch_max_wait_ms: int = Field(
        100,
        ge=0,
        description="Longest a stream's fetch waits for them, in ms (fetch.max.wait.ms).",
    )
    # Handled records whose outputs are not yet acknowledged (socialcrm.kafka.in_flight):
    # two fetches' worth lets the next batch be handled while the last one's acks are on
    # their way; a crash replays at most this many more records than before. Measured
    # with bench/stages.py (6,075 records, one round each, 2 shared cores), ratio to the
    # raw loop of the same run with 1,000 against 1 (no work ahead): sentiment 0.068 vs
    # 0.051, router 0.129 vs 0.116, crm-sink 0.037 vs 0.022.
    stream_max_in_flight_records: int = Field(
        1000,
        gt=0,
        description="Records a stream processor handles ahead of their acknowledgements.",
    )
    # Kafka's default message.max.bytes, which the local broker keeps: a record (key, value,
    # headers and batch overhead) larger than this is refused by the broker, so the producer
    # refuses it first and ingest answers 413 before publishing.
    kafka_max_message_bytes: int = Field(
        1048588,
        gt=0,
        description="Largest record the producer sends; match the brokers' message.max.bytes.",
    )
    shutdown_timeout_seconds: float = Field(20.0, description="Grace period on SIGTERM.")

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Self:
        """A half-configured Kafka security fails at start, naming what is missing, rather
        than at the first connection, or by silently connecting without it."""
        protocol = self.kafka_security_protocol
        if protocol.startswith("SASL_"):
            missing = [
                name
                for name, value in (
                    ("KAFKA_SASL_USERNAME", self.kafka_sasl_username),
                    ("KAFKA_SASL_PASSWORD", self.kafka_sasl_password.get_secret_value()),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs {', '.join(missing)}")
        elif self.kafka_sasl_username:
            raise ValueError(
                f"KAFKA_SASL_USERNAME is set but KAFKA_SECURITY_PROTOCOL={protocol} has no SASL"
            )
        if not protocol.endswith("SSL") and (
            self.kafka_ssl_cafile or self.kafka_ssl_certfile or self.kafka_ssl_keyfile
        ):
            raise ValueError(
                f"KAFKA_SSL_* files are set but KAFKA_SECURITY_PROTOCOL={protocol} has no TLS"
            )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("KAFKA_SSL_CERTFILE and KAFKA_SSL_KEYFILE go together")
        return self


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
