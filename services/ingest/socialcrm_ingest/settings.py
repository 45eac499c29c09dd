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
    dedup_cache_size: int = Field(
        100_000,
        description="Event ids remembered to answer redelivered webhooks without publishing "
        "again (0: off; consumers are idempotent anyway).",
    )
    x_consumer_secret: str = Field(
        "",
        description="X app consumer secret: answers CRC challenges and verifies "
        "x-twitter-webhooks-signature. Empty: signatures are not checked (local only).",
    )
    x_stream_webhook_secret: str = Field(
        "",
        description="Secret of the relay posting X filtered-stream JSON: verifies "
        "X-Signature-256. Empty: not checked (local only).",
    )
    meta_app_secret: str = Field(
        "",
        description="Meta app secret: verifies X-Hub-Signature-256. Empty: signatures are "
        "not checked (local only).",
    )
    meta_verify_token: str = Field(
        "",
        description="Verify token of the Meta webhook subscription (hub.verify_token). "
        "Empty: the subscription handshake is refused.",
    )
    forum_webhook_secret: str = Field(
        "",
        description="Secret of the forum/community webhook: verifies X-Signature-256. "
        "Empty: not checked (local only).",
    )
    email_webhook_secret: str = Field(
        "",
        description="Secret of the inbound-email webhook: verifies X-Signature-256. "
        "Empty: not checked (local only).",
    )
    chat_webhook_secret: str = Field(
        "",
        description="Secret of the chat-transcript webhook: verifies X-Signature-256. "
        "Empty: not checked (local only).",
    )
