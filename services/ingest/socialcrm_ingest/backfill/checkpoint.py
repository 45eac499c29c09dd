"""How far each input file was imported: the checkpoint file, replaced atomically."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


class CheckpointError(RuntimeError):
    """The checkpoint file cannot be read."""


@dataclass
class Position:
    line: int = 0
    offset: int = 0


def default_checkpoint(path: Path) -> Path:
    resolved = path.resolve()
    return resolved.with_name(resolved.name + ".checkpoint.json")


def load_checkpoint(path: Path) -> dict[str, Position]:
    if not path.exists():
        return {}
    try:
        document = json.loads(path.read_text())
        return {
            name: Position(int(p["line"]), int(p["offset"]))
            for name, p in document["files"].items()
        }
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({exc!r}); fix it, or rerun with --restart"
        ) from exc


def save_checkpoint(path: Path, positions: dict[str, Position]) -> None:
    """Replace the checkpoint atomically: an interruption leaves the old or the new one."""
    document = {
        "files": {name: {"line": p.line, "offset": p.offset} for name, p in positions.items()}
    }
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=1))
    os.replace(temporary, path)
