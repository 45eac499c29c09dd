"""What every normaliser shares: the error that names the bad field, and field access."""

from __future__ import annotations

from typing import Any


class PayloadError(ValueError):
    """The payload does not have the shape the network documents; the message says where."""


def require(obj: dict[str, Any], field: str, where: str) -> Any:
    value = obj.get(field)
    if value in (None, ""):
        raise PayloadError(f"{where}.{field} is missing")
    return value
