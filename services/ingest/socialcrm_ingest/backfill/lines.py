"""The lines to import: the input files, their lines from a position, and what each holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from socialcrm.v1 import interaction_pb2
from socialcrm_ingest.backfill.checkpoint import Position
from socialcrm_ingest.formats.payload import PayloadError
from socialcrm_ingest.formats.registry import NORMALIZERS


class LineError(ValueError):
    """A line that is not an importable post; the message is the reason."""


def interactions_of_line(
    line: bytes, fmt: str | None, default_brand: str, ingested_at: datetime
) -> list[interaction_pb2.Interaction]:
    """The interactions of one JSONL line (pure): a payload of ``fmt``, or an envelope.

    Without ``fmt`` every line is an envelope ``{"format": ..., "payload": ...}`` with an
    optional ``"brand"``.
    """
    try:
        document: Any = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise LineError(f"invalid JSON: {exc}") from exc
    brand = default_brand
    if fmt is None:
        if not isinstance(document, dict) or "format" not in document:
            raise LineError('not an envelope {"format": ..., "payload": ...}: format is missing')
        fmt = document["format"]
        if "payload" not in document:
            raise LineError("envelope: payload is missing")
        if not isinstance(document.get("brand", ""), str):
            raise LineError("envelope: brand is not a string")
        brand = document.get("brand") or default_brand
        document = document["payload"]
    if not isinstance(fmt, str) or fmt not in NORMALIZERS:
        raise LineError(f"unknown format {fmt!r}; known: {', '.join(sorted(NORMALIZERS))}")
    try:
        return NORMALIZERS[fmt](document, brand, ingested_at)
    except PayloadError as exc:
        raise LineError(f"not a {fmt} payload: {exc}") from exc


def input_files(path: Path) -> list[Path]:
    """The JSONL files to import: ``path`` itself, or the ``*.jsonl`` files under it, sorted."""
    if path.is_file():
        return [path.resolve()]
    if path.is_dir():
        return sorted(p.resolve() for p in path.rglob("*.jsonl") if p.is_file())
    raise FileNotFoundError(f"no file or directory {path}")


def lines_from(file: Path, start: Position) -> Iterator[tuple[int, int, bytes]]:
    """(line number, byte offset after the line, line) from ``start`` on."""
    with file.open("rb") as handle:
        handle.seek(start.offset)
        number, offset = start.line, start.offset
        for raw in handle:
            number += 1
            offset += len(raw)
            yield number, offset, raw
