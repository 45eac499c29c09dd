"""Files of a labelled set's splits (``data/care``, ``data/reviews``): one JSON object per
line, each with an ``id``. Read, written and checked the same way by each set's one-time
split script (``split.py`` beside the files), which decides only who goes where."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Row = dict[str, Any]


def load(paths: Sequence[Path]) -> list[Row]:
    """The rows of ``paths``, by id."""
    rows: list[Row] = []
    for path in paths:
        with path.open(encoding="utf-8") as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return sorted(rows, key=lambda r: r["id"])


def write(
    folder: Path,
    splits: Sequence[str],
    fields: Sequence[str],
    rows: Sequence[Row],
    split_of: dict[str, str],
) -> None:
    """``folder/<split>.jsonl`` for each split: its rows, in id order, with ``fields``."""
    for split in splits:
        with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as f:
            for row in rows:
                if split_of[row["id"]] == split:
                    f.write(json.dumps({k: row[k] for k in fields}, ensure_ascii=False) + "\n")


def misplaced(
    folder: Path, splits: Sequence[str], assign: Callable[[list[Row]], dict[str, str]]
) -> tuple[list[Row], list[str]]:
    """(every row, the ids of those whose file is not the split ``assign`` gives them)."""
    current = {split: load([folder / f"{split}.jsonl"]) for split in splits}
    rows = load([folder / f"{split}.jsonl" for split in splits])
    split_of = assign(rows)
    wrong = [r["id"] for split in splits for r in current[split] if split_of[r["id"]] != split]
    return rows, wrong
