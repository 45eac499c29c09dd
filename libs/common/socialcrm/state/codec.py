"""How a store's values become changelog record values and back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(frozen=True)
class Codec(Generic[V]):
    encode: Callable[[V], bytes]
    decode: Callable[[bytes], V]


def keep_latest(held: object | None, new: object) -> bool:
    """The default restore rule: the latest record of a key wins."""
    return True
