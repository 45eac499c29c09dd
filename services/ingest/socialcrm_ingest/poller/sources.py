"""The sources a poller polls and how each API is asked for a page (pure logic).

Each ``kind`` of POLL_SOURCES is one row of ``KINDS``: the format normalizing its items,
its API's address and credential (as ``PollerSettings`` fields), how a page is asked for,
where its items are and how the next page is named. A new kind is a normalizer, one row
here and its two settings.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from socialcrm_ingest.formats.payload import PayloadError


@dataclass(frozen=True)
class PageRequest:
    url: str
    params: Mapping[str, str]
    headers: Mapping[str, str]


TRIPADVISOR_PAGE_SIZE = 5  # the Content API returns at most 5 reviews a request


def youtube_request(source: PollSource, base: str, page_token: str, credential: str) -> PageRequest:
    params = {
        "part": "snippet,replies",
        "order": "time",
        "textFormat": "plainText",
        "maxResults": "100",
    }
    if source.target.startswith("channel:"):
        params["allThreadsRelatedToChannelId"] = source.target.removeprefix("channel:")
    else:
        params["videoId"] = source.target
    if page_token:
        params["pageToken"] = page_token
    if credential:
        params["key"] = credential
    return PageRequest(f"{base}/commentThreads", params, {})


def google_reviews_request(
    source: PollSource, base: str, page_token: str, credential: str
) -> PageRequest:
    params = {"pageSize": "50", "orderBy": "updateTime desc"}
    if page_token:
        params["pageToken"] = page_token
    headers = {"Authorization": f"Bearer {credential}"} if credential else {}
    return PageRequest(f"{base}/{source.target.strip('/')}/reviews", params, headers)


def tripadvisor_request(
    source: PollSource, base: str, page_token: str, credential: str
) -> PageRequest:
    params = {
        "language": source.language,
        "limit": str(TRIPADVISOR_PAGE_SIZE),
        "offset": page_token or "0",
    }
    if credential:
        params["key"] = credential
    return PageRequest(
        f"{base}/location/{source.target}/reviews", params, {"accept": "application/json"}
    )


def next_page_token(page: Mapping[str, Any], items: Sequence[Any], page_token: str) -> str:
    """Google's APIs name the next page in the page itself."""
    return str(page.get("nextPageToken") or "")


def next_offset(page: Mapping[str, Any], items: Sequence[Any], page_token: str) -> str:
    """The Content API pages by offset; a short page is the last one."""
    if len(items) < TRIPADVISOR_PAGE_SIZE:
        return ""
    return str(int(page_token or "0") + len(items))


@dataclass(frozen=True)
class SourceKind:
    """How one API is polled."""

    format: str  # key of formats.registry.NORMALIZERS
    target: str  # what a source's target names, for the docs
    default_base_url: str
    base_url_setting: str  # the PollerSettings field of its address (default_base_url)
    credential_setting: str  # the PollerSettings field of its API key or token
    # (source, base URL without its last "/", page token, credential) -> the request.
    request: Callable[[PollSource, str, str, str], PageRequest]
    items_field: str  # where a page's items are
    # (page, its items, its page token) -> the next page's token ("" on the last page).
    next_page: Callable[[Mapping[str, Any], Sequence[Any], str], str] = next_page_token


KINDS: Mapping[str, SourceKind] = {
    "youtube": SourceKind(
        "youtube-comment-threads",
        "a video id, or channel:<channel id> for all the channel's threads",
        "https://www.googleapis.com/youtube/v3",
        base_url_setting="youtube_api_base_url",
        credential_setting="youtube_api_key",
        request=youtube_request,
        items_field="items",
    ),
    "google_reviews": SourceKind(
        "google-business-reviews",
        "accounts/<a>/locations/<l>",
        "https://mybusiness.googleapis.com/v4",
        base_url_setting="google_business_api_base_url",
        credential_setting="google_business_access_token",
        request=google_reviews_request,
        items_field="reviews",
    ),
    "tripadvisor": SourceKind(
        "tripadvisor-reviews",
        "a location id",
        "https://api.content.tripadvisor.com/api/v1",
        base_url_setting="tripadvisor_api_base_url",
        credential_setting="tripadvisor_api_key",
        request=tripadvisor_request,
        items_field="data",
        next_page=next_offset,
    ),
}


class PollSource(BaseModel):
    """One entry of ``POLL_SOURCES``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Unique name: the key of the saved cursor.")
    kind: str = Field(json_schema_extra={"enum": list(KINDS)})
    target: str = Field(
        min_length=1,
        description="; ".join(f"{name}: {kind.target}" for name, kind in KINDS.items()) + ".",
    )
    brand: str | None = None
    interval_seconds: float | None = Field(None, gt=0)
    base_url: str | None = None
    language: str = "en"

    @field_validator("kind", mode="before")
    @classmethod
    def known_kind(cls, kind: Any) -> Any:
        if not isinstance(kind, str) or kind not in KINDS:
            # Worded as pydantic words a Literal's refusal.
            *first, last = (repr(name) for name in KINDS)
            raise PydanticCustomError(
                "literal_error",
                "Input should be {expected}",
                {"expected": f"{', '.join(first)} or {last}"},
            )
        return kind


_SOURCES = TypeAdapter(list[PollSource])


def parse_sources(text: str) -> list[PollSource]:
    """Sources from a JSON (or YAML) list; ValueError naming the problem."""
    try:
        document: Any = json.loads(text)
    except json.JSONDecodeError:
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"POLL_SOURCES is neither JSON nor YAML: {exc}") from exc
    try:
        sources = _SOURCES.validate_python(document or [])
    except ValidationError as exc:
        raise ValueError(f"invalid POLL_SOURCES: {exc}") from exc
    names = [source.name for source in sources]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"POLL_SOURCES names must be unique: {', '.join(duplicates)}")
    return sources


def page_request(
    source: PollSource, base_url: str, page_token: str, credential: str
) -> PageRequest:
    """The request of one page, newest first; ``credential`` is the API key or token."""
    return KINDS[source.kind].request(source, base_url.rstrip("/"), page_token, credential)


def split_page(source: PollSource, page: Any, page_token: str) -> tuple[Sequence[Any], str]:
    """The items of a page and the token of the next one ("" on the last page)."""
    if not isinstance(page, dict):
        raise PayloadError("body is not a JSON object")
    kind = KINDS[source.kind]
    items = page.get(kind.items_field, [])
    if not isinstance(items, list):
        raise PayloadError(f"{kind.items_field} is not a list")
    return items, kind.next_page(page, items, page_token)
