from pydantic import Field, field_validator

from socialcrm.labels import BrandSettings
from socialcrm.settings import ServiceSettings
from socialcrm_ingest.channels import WEBHOOKS

# Said of every secret: without it an enabled channel keeps ingest from starting.
FAIL_CLOSED = (
    "Required while the channel is enabled (INGEST_CHANNELS): ingest refuses to start "
    "without it unless WEBHOOKS_INSECURE_LOCAL=true."
)


class IngestSettings(ServiceSettings, BrandSettings):
    service_name: str = "ingest"
    http_port: int = 8001
    default_brand: str = Field("acme", description="Brand of webhooks that do not name one.")
    max_body_bytes: int = Field(
        1_048_576,
        gt=0,
        description="Larger webhook bodies are refused with 413, chunked ones included: "
        "reading stops at the limit, before any signature work.",
    )
    max_items_per_call: int = Field(
        1_000,
        gt=0,
        description="Interactions one webhook call may carry (Meta batches up to 1,000 "
        "updates); more are refused with 413 and nothing is published.",
    )
    parse_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Decoding and normalizing a body run off the event loop; a body that "
        "takes longer is refused with 422.",
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
        "x-twitter-webhooks-signature. " + FAIL_CLOSED,
    )
    x_stream_webhook_secret: str = Field(
        "",
        description="Secret of the relay posting X filtered-stream JSON: verifies "
        "X-Signature-256 over X-Signature-Timestamp and the body. " + FAIL_CLOSED,
    )
    meta_app_secret: str = Field(
        "",
        description="Meta app secret: verifies X-Hub-Signature-256. " + FAIL_CLOSED,
    )
    meta_verify_token: str = Field(
        "",
        description="Verify token of the Meta webhook subscription (hub.verify_token). "
        + FAIL_CLOSED,
    )
    forum_webhook_secret: str = Field(
        "",
        description="Secret of the forum/community webhook: verifies X-Signature-256 over "
        "X-Signature-Timestamp and the body. " + FAIL_CLOSED,
    )
    email_webhook_secret: str = Field(
        "",
        description="Secret of the inbound-email webhook: verifies X-Signature-256 over "
        "X-Signature-Timestamp and the body. " + FAIL_CLOSED,
    )
    mail_gateway_secret: str = Field(
        "",
        description="Secret of the mail gateway's verdict header (X-SocialCRM-Mail-Verdict): "
        "an email's From is a verified identity only when the gateway signed, with this "
        "secret, a DMARC or aligned DKIM pass for the From's domain. Empty: no email sender "
        "is verified (each stays the sender's claim, never linked automatically).",
    )
    chat_webhook_secret: str = Field(
        "",
        description="Secret of the chat-transcript webhook: verifies X-Signature-256 over "
        "X-Signature-Timestamp and the body. " + FAIL_CLOSED,
    )
    ingest_channels: str = Field(
        ",".join(WEBHOOKS),
        description="Comma-separated webhook channels this ingest serves (others answer "
        "404, and need no secret): " + ", ".join(WEBHOOKS) + ".",
    )
    webhooks_insecure_local: bool = Field(
        False,
        description="Local development only: start even though an enabled channel has no "
        "secret, and accept that channel's calls unsigned (logged loudly at start).",
    )
    webhook_replay_window_seconds: int = Field(
        300,
        gt=0,
        description="Our own webhooks (X-Signature-Timestamp) are refused when their "
        "timestamp is further than this from now, and an exact replay inside it is refused.",
    )
    webhook_replay_cache_size: int = Field(
        100_000,
        gt=0,
        description="Signatures of recent calls remembered to refuse replays inside the "
        "window; the oldest are forgotten first beyond it.",
    )

    @field_validator("ingest_channels")
    @classmethod
    def known_channels(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        unknown = sorted(set(names) - set(WEBHOOKS))
        if unknown:
            raise ValueError(f"unknown channels {', '.join(unknown)}; known: {', '.join(WEBHOOKS)}")
        return ",".join(names)

    @property
    def enabled_channels(self) -> tuple[str, ...]:
        return tuple(name for name in self.ingest_channels.split(",") if name)
