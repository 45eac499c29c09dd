"""Ingest's webhooks fail closed, X's CRC signs no body, replayed calls are refused (issue 16).

Finding 3: ``GET /v1/webhooks/x?crc_token=<JSON of a forged event>`` answered the HMAC of
that JSON, a valid ``x-twitter-webhooks-signature`` for it as a body; 60 KB tokens too.
Finding 4: without secrets all six channels took unsigned calls (a warning at start only).
Our own channels carry a signed timestamp: stale calls and exact replays are refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from socialcrm_devstack.processes import free_port
from socialcrm_devstack.stack import LOCAL_WEBHOOK_SECRETS, LocalStack
from tests.conftest import Infra
from tests.fixtures.payloads import FIXTURES, x_tweet_event
from tests.fixtures.webhooks import post_webhook, signed_request_headers

pytestmark = [pytest.mark.security, pytest.mark.e2e]


def unique_id() -> str:
    return str(uuid.uuid4().int)[:19]


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def forum_post() -> dict[str, Any]:
    return fixture("forum/reply.json") | {"id": f"p-{unique_id()}"}


def valid_calls() -> dict[str, tuple[bytes, str]]:
    """A body each network would send (path -> body, content type), new ids each time."""
    stream = fixture("x/filtered_stream.json")
    stream["data"]["id"] = unique_id()
    comment = fixture("meta/page_feed_comment.json")
    comment["entry"][0]["changes"][0]["value"]["comment_id"] = f"912345678901234_{unique_id()}"
    mail = (FIXTURES / "email" / "reply.eml").read_bytes()
    chat = fixture("chat/transcript.json") | {"conversation_id": f"c-{unique_id()}"}
    json_type = "application/json"
    return {
        "/v1/webhooks/x": (json.dumps(x_tweet_event(unique_id())).encode(), json_type),
        "/v1/webhooks/x-stream": (json.dumps(stream).encode(), json_type),
        "/v1/webhooks/meta": (json.dumps(comment).encode(), json_type),
        "/v1/webhooks/forum": (json.dumps(forum_post()).encode(), json_type),
        "/v1/webhooks/email": (
            mail.replace(b"CAF=reply-48213.2", f"reply-{unique_id()}".encode()),
            "message/rfc822",
        ),
        "/v1/webhooks/chat": (json.dumps(chat).encode(), json_type),
    }


def clean_env(bootstrap: str, **extra: str) -> dict[str, str]:
    """No webhook secret: only what a process needs to run, and the broker's address."""
    keep = ("PATH", "HOME", "LANG", "SYSTEMROOT", "TMPDIR")
    return {
        **{name: os.environ[name] for name in keep if name in os.environ},
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "HTTP_HOST": "127.0.0.1",
        "HTTP_PORT": str(free_port()),
        **extra,
    }


def test_ingest_without_webhook_secrets_refuses_to_start_naming_them(infra: Infra) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "socialcrm_ingest"],
        env=clean_env(infra.kafka.bootstrap),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        pytest.fail("ingest started without any webhook secret")
    assert process.returncode != 0
    assert "ingest refuses to start" in output
    for name in LOCAL_WEBHOOK_SECRETS:
        assert name in output
    assert "WEBHOOKS_INSECURE_LOCAL" in output


def test_the_local_insecure_setting_starts_unsigned_and_says_so_loudly(
    infra: Infra, tmp_path: Path
) -> None:
    log = tmp_path / "ingest.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "socialcrm_ingest"],
            env=clean_env(infra.kafka.bootstrap, WEBHOOKS_INSECURE_LOCAL="true"),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "INSECURE" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        line = next(x for x in log.read_text().splitlines() if "INSECURE" in x)
        assert "WEBHOOKS_INSECURE_LOCAL is on" in line
        assert "x, x-stream, meta, forum, email, chat accept unsigned calls" in line
        assert json.loads(line)["level"] == "error"
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.parametrize("path", list(valid_calls()))
def test_unsigned_calls_to_every_channel_get_401_naming_the_header(
    platform: LocalStack, path: str
) -> None:
    body, content_type = valid_calls()[path]
    response = httpx.post(
        platform.url("ingest") + path, content=body, headers={"content-type": content_type}
    )
    assert response.status_code == 401, response.text
    detail = response.json()["detail"]
    assert detail.startswith("missing x-")
    assert "header" in detail
    for secret in LOCAL_WEBHOOK_SECRETS.values():
        assert secret not in response.text


@pytest.mark.parametrize("path", list(valid_calls()))
def test_signed_calls_to_every_channel_are_accepted(platform: LocalStack, path: str) -> None:
    body, content_type = valid_calls()[path]
    response = post_webhook(platform, path, body, headers={"content-type": content_type})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] >= 1


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ('{"tweet_create_events":[]}', "crc_token may hold only letters, digits and -_+/="),
        ("A" * 60_000, "crc_token is longer than 256 characters"),
        ("", "crc_token is empty"),
    ],
    ids=["json", "60-kB", "empty"],
)
def test_the_crc_refuses_tokens_that_are_not_plain(
    platform: LocalStack, token: str, reason: str
) -> None:
    response = httpx.get(
        platform.url("ingest") + "/v1/webhooks/x", params={"crc_token": token}, timeout=30
    )
    assert response.status_code == 400, response.text
    assert response.json()["detail"] == reason


def test_the_crc_answers_a_plain_token(platform: LocalStack) -> None:
    response = httpx.get(
        platform.url("ingest") + "/v1/webhooks/x", params={"crc_token": "NjM4NzE0NjQ4NTYy-_"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["response_token"].startswith("sha256=")


def test_a_tweet_signed_through_the_crc_is_refused(platform: LocalStack) -> None:
    forged = json.dumps(x_tweet_event(unique_id(), text="Free refunds for all, DM me")).encode()
    crc = httpx.get(
        platform.url("ingest") + "/v1/webhooks/x", params={"crc_token": forged.decode()}
    )
    # The old door answered the HMAC of the token: a valid signature of the same bytes.
    signature = crc.json().get("response_token", "") if crc.status_code == 200 else ""
    response = httpx.post(
        platform.url("ingest") + "/v1/webhooks/x",
        content=forged,
        headers={"content-type": "application/json", "x-twitter-webhooks-signature": signature},
    )
    assert response.status_code == 401, response.text


def test_a_stale_forum_call_is_refused_naming_the_timestamp(platform: LocalStack) -> None:
    path = "/v1/webhooks/forum"
    body = json.dumps(forum_post()).encode()
    headers = signed_request_headers(platform, path, body, now=time.time() - 600)
    response = httpx.post(platform.url("ingest") + path, content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["detail"] == (
        "x-signature-timestamp is more than 300 s away from now (stale call)"
    )


def test_an_exact_replay_of_a_forum_call_is_refused(platform: LocalStack) -> None:
    path = "/v1/webhooks/forum"
    body = json.dumps(forum_post()).encode()
    headers = signed_request_headers(platform, path, body)
    first = httpx.post(platform.url("ingest") + path, content=body, headers=headers)
    replay = httpx.post(platform.url("ingest") + path, content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 1
    assert replay.status_code == 401, replay.text
    assert replay.json()["detail"] == "x-signature-256 was already used: replayed call"
