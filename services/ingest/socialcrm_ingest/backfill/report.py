"""What the backfill tells its user: the summary at the end, and progress lines on stderr."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO


@dataclass
class Summary:
    files: int = 0
    lines: int = 0
    resumed_lines: int = 0
    published: int = 0
    duplicates: int = 0
    empty: int = 0
    bad: int = 0
    bad_lines: list[str] = field(default_factory=list)
    stopped_early: bool = False
    interrupted: bool = False
    seconds: float = 0.0

    def text(self, *, dry_run: bool, dlq: str) -> str:
        rate = self.lines / self.seconds if self.seconds > 0 else 0.0
        verb = "valid interactions" if dry_run else "published"
        parts = [
            f"{self.files} file(s)",
            f"{self.lines} line(s) read in {self.seconds:.1f} s ({rate:.0f} lines/s)",
            f"{self.published} {verb}",
            f"{self.duplicates} duplicate(s) skipped",
            f"{self.empty} line(s) without interactions",
            f"{self.bad} bad line(s)" + ("" if dry_run or not self.bad else f" sent to {dlq}"),
        ]
        if self.resumed_lines:
            parts.append(f"{self.resumed_lines} line(s) done by earlier runs")
        ending = "done"
        if self.interrupted:
            ending = "interrupted; rerun to continue"
        elif self.stopped_early:
            ending = "stopped at --limit; rerun to continue"
        return f"backfill {ending}" + (" (dry run)" if dry_run else "") + ": " + ", ".join(parts)


class PlainLines:
    """A stream for tqdm when stderr is not a terminal: each refresh on a line of its own."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").strip("\n")
        if text:
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()
