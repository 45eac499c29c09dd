"""What each webhook requires (pure): secrets at start, signatures and freshness per call.

Calls are signed by the local stack's senders (``socialcrm_devstack.webhook_signing``), so
these tests also prove that the demo, the tests and the benchmarks sign as ingest checks.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from socialcrm_devstack.stack import LOCAL_WEBHOOK_SECRETS
from socialcrm_devstack.webhook_signing import signed_headers
from socialcrm_ingest.channels import WEBHOOKS
from socialcrm_ingest.security.doors import Doors, MissingWebhookSecrets
from socialcrm_ingest.webhooks.settings import IngestSettings

NOW = 1_790_000_000.0
BODY = json.dumps({"type": "post", "id": "p-1"}).encode()


def settings(**values: Any) -> IngestSettings:
    secrets = {name.lower(): value for name, value in LOCAL_WEBHOOK_SECRETS.items()}
    return IngestSettings(**(secrets | values))


def lower(headers: dict[str, str]) -> dict[str, str]:
    """As Starlette gives them: header names are case-insensitive."""
    return {name.lower(): value for name, value in headers.items()}


def signed(channel: str, body: bytes = BODY, now: float = NOW) -> dict[str, str]:
    return lower(signed_headers(f"/v1/webhooks/{channel}", body, LOCAL_WEBHOOK_SECRETS, now=now))


def test_without_secrets_ingest_refuses_to_start_naming_every_variable() -> None:
    with pytest.raises(MissingWebhookSecrets) as refused:
        Doors(IngestSettings())
    for name in LOCAL_WEBHOOK_SECRETS:
        assert name in str(refused.value)
    assert "WEBHOOKS_INSECURE_LOCAL" in str(refused.value)


def test_only_enabled_channels_need_a_secret() -> None:
    doors = Doors(IngestSettings(ingest_channels="forum", forum_webhook_secret="s"))
    assert doors.enabled == ("forum",)
    with pytest.raises(MissingWebhookSecrets, match="META_VERIFY_TOKEN"):
        Doors(settings(meta_verify_token=""))


def test_the_insecure_local_setting_accepts_unsigned_calls_of_channels_without_secret() -> None:
    doors = Doors(IngestSettings(webhooks_insecure_local=True, forum_webhook_secret="s"))
    assert doors.unverified() == ["x", "x-stream", "meta", "email", "chat"]
    assert doors.problem("chat", BODY, {}, NOW) is None
    assert doors.problem("forum", BODY, {}, NOW) == "missing x-signature-timestamp header"


@pytest.mark.parametrize("channel", WEBHOOKS)
def test_calls_signed_as_the_senders_do_are_accepted(channel: str) -> None:
    assert Doors(settings()).problem(channel, BODY, signed(channel), NOW) is None


@pytest.mark.parametrize("channel", WEBHOOKS)
def test_unsigned_and_tampered_calls_are_refused_naming_the_header(channel: str) -> None:
    doors = Doors(settings())
    unsigned = doors.problem(channel, BODY, {}, NOW)
    tampered = doors.problem(channel, BODY + b" ", signed(channel), NOW)
    assert unsigned is not None
    assert unsigned.startswith("missing x-")
    assert tampered is not None
    assert "does not match" in tampered
    for secret in LOCAL_WEBHOOK_SECRETS.values():
        assert secret not in unsigned + tampered


@pytest.mark.parametrize("channel", ["x-stream", "forum", "email", "chat"])
def test_our_own_channels_refuse_stale_calls_and_exact_replays(channel: str) -> None:
    doors = Doors(settings())
    stale = doors.problem(channel, BODY, signed(channel, now=NOW - 301), NOW)
    assert stale == "x-signature-timestamp is more than 300 s away from now (stale call)"
    headers = signed(channel)
    assert doors.problem(channel, BODY, headers, NOW) is None
    assert doors.problem(channel, BODY, headers, NOW + 10) == (
        "x-signature-256 was already used: replayed call"
    )
    assert doors.problem(channel, BODY, signed(channel, now=NOW + 1), NOW + 10) is None


def test_a_failed_call_releases_its_signature_for_the_senders_retry() -> None:
    doors = Doors(settings())
    headers = signed("forum")
    assert doors.problem("forum", BODY, headers, NOW) is None
    doors.release("forum", headers)
    assert doors.problem("forum", BODY, headers, NOW + 5) is None


def test_x_and_meta_redeliveries_pass_the_door_since_they_carry_no_timestamp() -> None:
    doors = Doors(settings())
    for channel in ("x", "meta"):
        assert doors.problem(channel, BODY, signed(channel), NOW) is None
        assert doors.problem(channel, BODY, signed(channel), NOW + 3600) is None


def test_the_window_is_a_setting() -> None:
    doors = Doors(settings(webhook_replay_window_seconds=30))
    assert doors.problem("chat", BODY, signed("chat", now=NOW - 31), NOW) == (
        "x-signature-timestamp is more than 30 s away from now (stale call)"
    )


def test_unknown_channels_in_the_setting_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown channels myspace"):
        IngestSettings(ingest_channels="x, myspace")
