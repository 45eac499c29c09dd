"""Settings of the CRM sink, from environment variables (``socialcrm-crm-sink --help``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from socialcrm.settings import ApiSettings, MongoSettings
from socialcrm_crm_sink.fingerprints import INSECURE_LOCAL_SECRET, MIN_SECRET_LENGTH


class CrmSinkSettings(MongoSettings, ApiSettings):
    service_name: str = "crm-sink"
    http_port: int = 8004
    # The CRM path is not the alert path: fuller fetches make fuller bulk writes, which cost
    # the database less per event. bench/pipeline.py at 600 events/s (one round each, shared
    # machine): database 1.75 -> 1.31 ms an event, crm-sink 0.54 -> 0.41, for at most
    # 500 ms more before a quiet stream's interaction is in the CRM.
    consumer_fetch_min_bytes: int = Field(
        262144,
        gt=0,
        description="Bytes a fetch waits for (fetch.min.bytes): fuller bulk writes.",
    )
    consumer_fetch_max_wait_ms: int = Field(
        500, ge=0, description="Longest a fetch waits for them, in ms (fetch.max.wait.ms)."
    )
    crm_reply_wait_seconds: float = Field(
        300.0,
        description="How long a reply waits (retried) for its interaction to be recorded "
        "before it goes to the dead-letter topic.",
    )

    crm_webhook_url: str = Field(
        "",
        description="External CRM endpoint receiving contact and ticket changes as signed "
        "webhooks (empty: connector off).",
    )
    crm_webhook_secret: str = Field(
        "", description="HMAC-SHA256 key of the X-SocialCRM-Signature-256 header."
    )
    crm_webhook_max_attempts: int = Field(
        5, ge=1, description="Tries per change before it goes to crm.events.v1.dlq."
    )
    crm_webhook_backoff_seconds: float = Field(
        0.5, description="First pause between tries; doubles each time, at most 30 s."
    )
    crm_webhook_timeout_seconds: float = Field(
        10.0,
        gt=0,
        description="Deadline of one webhook call, from connecting to the last byte of the "
        "answer read (a slower or dripping answer counts as a failed try).",
    )
    crm_webhook_max_response_bytes: int = Field(
        16_384,
        ge=0,
        description="Bytes of the external CRM's answer read at most (the rest is dropped "
        "unread; only an error's first 200 characters are kept, in the dead-letter reason).",
    )
    crm_webhook_max_retry_after_seconds: float = Field(
        30.0,
        ge=0,
        description="Longest pause a Retry-After of the external CRM can impose before the "
        "next try (a longer one waits this long).",
    )
    crm_fingerprint_secret: SecretStr = Field(
        SecretStr(""),
        description="Key of the HMAC-SHA256 fingerprints of erased identities (required, at "
        f"least {MIN_SECRET_LENGTH} characters; keep it: another key forgets past erasures).",
    )
    crm_fingerprint_insecure_local: bool = Field(
        False,
        description="Development only: without CRM_FINGERPRINT_SECRET, use a public key "
        "(fingerprints of erased phone numbers and emails then reversible by brute force).",
    )

    @model_validator(mode="after")
    def _fingerprints_keyed(self) -> CrmSinkSettings:
        secret = self.crm_fingerprint_secret.get_secret_value()
        if secret and len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"CRM_FINGERPRINT_SECRET is shorter than {MIN_SECRET_LENGTH} characters"
            )
        if not secret and not self.crm_fingerprint_insecure_local:
            raise ValueError(
                "CRM_FINGERPRINT_SECRET is required (or CRM_FINGERPRINT_INSECURE_LOCAL=true "
                "for a local run only)"
            )
        return self

    def fingerprint_secret(self) -> str:
        return self.crm_fingerprint_secret.get_secret_value() or INSECURE_LOCAL_SECRET
