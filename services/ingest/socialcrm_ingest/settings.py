from pydantic import Field

from socialcrm.settings import ServiceSettings


class IngestSettings(ServiceSettings):
    service_name: str = "ingest"
    http_port: int = 8001
    default_brand: str = Field("acme", description="Brand of webhooks that do not name one.")
    max_body_bytes: int = Field(
        1_048_576, description="Larger webhook bodies are refused with 413."
    )
    publish_timeout_seconds: float = Field(
        5.0,
        description="How long a webhook waits for the broker's acknowledgement before "
        "answering 503 with Retry-After (the network then retries).",
    )
    retry_after_seconds: int = Field(5, description="Retry-After of a 503 answer.")
    x_consumer_secret: str = Field(
        "",
        description="X app consumer secret: answers CRC challenges and verifies "
        "x-twitter-webhooks-signature. Empty: signatures are not checked (local only).",
    )
