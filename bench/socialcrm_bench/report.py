"""Progress messages, percentiles and the output of a benchmark (report or JSON object)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence


def say(message: str) -> None:
    """Progress, on stderr: stdout carries the report (or the JSON object with --json)."""
    print(message, file=sys.stderr, flush=True)


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (``fraction`` in 0..1); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(fraction * len(ordered))))
    return ordered[rank - 1]


def latency_row(label: str, values_ms: Sequence[float]) -> str:
    cells = [percentile(values_ms, f) for f in (0.5, 0.95, 0.99)]
    cells.append(max(values_ms) if values_ms else float("nan"))
    return f"  {label:<34}" + "".join(f"{c:>10.1f}" for c in cells) + f"{len(values_ms):>10}"


def rounded(value: float) -> float | None:
    """``value`` to 0.1, or None (JSON null) when there is none (NaN)."""
    return None if math.isnan(value) else round(value, 1)


def add_json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object of named figures on stdout (the report goes to stderr)",
    )


def emit(text: str, named: Mapping[str, object], as_json: bool) -> None:
    """The report on stdout; with ``as_json`` the report on stderr and one JSON object of
    the named figures on stdout."""
    if as_json:
        say(text)
        print(json.dumps(named), flush=True)
    else:
        print(text, flush=True)
