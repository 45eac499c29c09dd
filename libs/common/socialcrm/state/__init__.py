"""Partition-owned state: in-memory maps made durable by compacted changelog topics.

Like Kafka Streams' state stores: the state of input partition N lives in partition N of
the store's changelog, is restored when partition N is assigned, dropped when it is
revoked, and written only by its owner (``store``). A read-only view of every partition
serves replicas that must answer about state they do not own (``view``). Writes of a
store given a ``Writer`` are fenced (``fencing``): a former owner's never win.
"""

from socialcrm.state.changelog import ensure_changelog_topic
from socialcrm.state.codec import Codec
from socialcrm.state.fencing import Writer
from socialcrm.state.store import PartitionedStore
from socialcrm.state.view import ChangelogView

__all__ = ["ChangelogView", "Codec", "PartitionedStore", "Writer", "ensure_changelog_topic"]
