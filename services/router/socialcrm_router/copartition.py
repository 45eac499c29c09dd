"""The start-up check that the router's input topics are co-partitioned.

One replica owns partition N of the interactions, the commands and the replies together:
that holds only when the three topics have as many partitions (and the same keys). A
topic created by hand, or grown alone, would send a conversation's commands to another
owner, which does not hold its state: refused at start, naming the topics.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from socialcrm.settings import ServiceSettings


class NotCoPartitioned(RuntimeError):
    """The input topics have different partition counts."""


def copartition_problem(counts: Mapping[str, int], reference: str) -> str | None:
    """What is wrong with ``counts`` (partitions per topic), or None when all agree."""
    expected = counts[reference]
    wrong = {topic: n for topic, n in counts.items() if n != expected}
    if not wrong:
        return None
    listed = ", ".join(f"{topic} has {n}" for topic, n in sorted(wrong.items()))
    return (
        f"the router's inputs must be co-partitioned with {reference} ({expected} partitions),"
        f" but {listed}: give them {expected} partitions (or recreate them) before starting"
    )


class CoPartitioned:
    """Start-up step (after the topics exist): refuse to start unless co-partitioned."""

    name = "co-partitioning"

    def __init__(
        self,
        settings: ServiceSettings,
        reference: str,
        others: Sequence[str],
        partitions_of: Callable[[ServiceSettings, str], Awaitable[int]],
    ) -> None:
        self.settings = settings
        self.reference = reference
        self.others = others
        self.partitions_of = partitions_of

    async def start(self) -> None:
        topics = [self.reference, *self.others]
        counts = {topic: await self.partitions_of(self.settings, topic) for topic in topics}
        problem = copartition_problem(counts, self.reference)
        if problem is not None:
            raise NotCoPartitioned(problem)

    async def stop(self) -> None:
        return None

    async def check(self) -> None:
        return None
