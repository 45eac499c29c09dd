"""The sources a poller polls and how each API is asked for a page (pure logic)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from socialcrm_ingest.formats.payload import PayloadError

SourceKind = Literal["youtube", "google_reviews", "tripadvisor"]


class PollSource(BaseModel):
    """One entry of ``POLL_SOURCES``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Unique name: the key of the saved cursor.")
    kind: SourceKind
    target: str = Field(
        min_length=1,
        description="youtube: a video id, or channel:<channel id> for all the channel's "
        "threads; google_reviews: accounts/<a>/locations/<l>; tripadvisor: a location id.",
    )
    brand: str | None = None
    interval_seconds: float | None = Field(None, gt=0)
    base_url: str | None = None
    language: str = "en"


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


@dataclass(frozen=True)
class PageRequest:
    url: str
    params: Mapping[str, str]
    headers: Mapping[str, str]


@dataclass(frozen=True)
class KindSpec:
    """How one API is polled: the normalizer of its pages and its default address."""

    format: str
    default_base_url: str
    items_field: str


KINDS: Mapping[str, KindSpec] = {
    "youtube": KindSpec(
        "youtube-comment-threads", "https://www.googleapis.com/youtube/v3", "items"
    ),
    "google_reviews": KindSpec(
        "google-business-reviews", "https://mybusiness.googleapis.com/v4", "reviews"
    ),
    "tripadvisor": KindSpec(
        "tripadvisor-reviews", "https://api.content.tripadvisor.com/api/v1", "data"
    ),
}

TRIPADVISOR_PAGE_SIZE = 5  # the Content API returns at most 5 reviews a request


def page_request(
    source: PollSource, base_url: str, page_token: str, credential: str
) -> PageRequest:
    """The request of one page, newest first; ``credential`` is the API key or token."""
    base = base_url.rstrip("/")
    if source.kind == "youtube":
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
    if source.kind == "google_reviews":
        params = {"pageSize": "50", "orderBy": "updateTime desc"}
        if page_token:
            params["pageToken"] = page_token
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        return PageRequest(f"{base}/{source.target.strip('/')}/reviews", params, headers)
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


def split_page(source: PollSource, page: Any, page_token: str) -> tuple[Sequence[Any], str]:
    """The items of a page and the token of the next one ("" on the last page)."""
    if not isinstance(page, dict):
        raise PayloadError("body is not a JSON object")
    field = KINDS[source.kind].items_field
    items = page.get(field, [])
    if not isinstance(items, list):
        raise PayloadError(f"{field} is not a list")
    if source.kind == "tripadvisor":
        # The Content API pages by offset; a short page is the last one.
        offset = int(page_token or "0")
        more = len(items) >= TRIPADVISOR_PAGE_SIZE
        return items, str(offset + len(items)) if more else ""
    token = page.get("nextPageToken") or ""
    return items, str(token)
