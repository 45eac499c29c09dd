"""Settings of the kpi service."""

from __future__ import annotations

from pydantic import Field

from socialcrm.labels import BrandSettings, names
from socialcrm.settings import ServiceSettings
from socialcrm_kpi.spikes import SpikeSettings
from socialcrm_kpi.windows import ShareOfVoice, WindowSpec

# An upstream failover, as a kpi input partition sees it: the router or sentiment member
# that owns it dies; the group notices after its session timeout (10 s, aiokafka's
# default), rebalances (up to its rebalance timeout, 10 s, while a surviving member's
# revoke waits for its batch), the new owner restores the partition's state (0.1 to 1.9 s
# for 5,000 to 50,000 open interactions, bench/restore.py) and catches up. About 22 s at
# worst; the review measured a 20 s stall. The partition holds the watermark back while
# its stall is shorter than the idle time (45 s: twice the failover), and once counted
# idle its late events are still accepted while the stall is shorter than the lateness
# (60 s: a failover plus a second rebalance). The cost: a window's snapshot comes about a
# minute after its end instead of 10 s.
IDLE_PARTITION_SECONDS = 45.0
ALLOWED_LATENESS_SECONDS = 60.0
# The queues of the router's default rules (services/router/socialcrm_router/rules/).
DEFAULT_QUEUES = (
    "customer-service-fr,customer-service-en,community,legal-press,billing,technical-support"
)


class KpiSettings(ServiceSettings, BrandSettings):
    service_name: str = "kpi"
    http_port: int = 8005
    kpi_windows: str = Field(
        "60,300/60",
        description="Windows as size[/step] in seconds, comma-separated (tumbling without step).",
    )
    kpi_allowed_lateness_seconds: float = Field(
        ALLOWED_LATENESS_SECONDS,
        ge=0,
        description="Event-time delay before a window closes: longer than an upstream "
        "failover, so that a stalled partition's events are not refused.",
    )
    kpi_known_queues: str = Field(
        DEFAULT_QUEUES,
        description="Queues counted under their own name (the queues of the router's rule "
        "file), comma-separated; any other queue counts as 'other'.",
    )
    kpi_own_brands: str = Field("", description="Own brands, comma-separated (share of voice).")
    kpi_competitor_brands: str = Field(
        "", description="Competitor brands, comma-separated; empty compares all brands."
    )
    kpi_backlog_max_age_seconds: float = Field(
        86400.0, description="Unanswered items older than this leave the backlog."
    )
    kpi_state_snapshot_seconds: float = Field(
        30.0, description="Interval of full state snapshots to kpi.state.v2."
    )
    kpi_dedup_horizon_seconds: float = Field(
        600.0,
        gt=0,
        description="Event ids are remembered (in the state) while their event time is "
        "within this of the watermark: a redelivered event counts once.",
    )
    kpi_idle_partition_seconds: float = Field(
        IDLE_PARTITION_SECONDS,
        gt=0,
        description="An input partition caught up and without records this long no longer "
        "holds the watermark back: longer than an upstream failover.",
    )
    kpi_transactional_id: str = Field(
        "",
        description="Transactional id of the active instance's producer; the same for every "
        "instance of a deployment, so that a new owner fences the former one "
        "(empty: the service name).",
    )
    kpi_session_timeout_ms: int = Field(
        10_000,
        ge=6000,
        description="Consumer session timeout: how long before a standby takes over from an "
        "owner that died (the broker's group.min.session.timeout.ms is 6000 by default).",
    )
    spike_bucket_seconds: int = Field(60, description="Bucket of the spike detector.")
    spike_min_count: int = Field(20, description="Fewest events in a bucket that can alert.")
    spike_min_history_buckets: int = Field(
        15, description="Buckets a series must see before it can alert."
    )
    spike_max_p_value: float = Field(1e-6, description="Poisson tail probability of a spike.")

    def transactional_id(self) -> str:
        return self.kpi_transactional_id or self.service_name

    def window_specs(self) -> list[WindowSpec]:
        specs = []
        for item in self.kpi_windows.split(","):
            size, _, step = item.strip().partition("/")
            specs.append(WindowSpec(int(size), int(step or size)))
        return specs

    def share_of_voice(self) -> ShareOfVoice:
        return ShareOfVoice(names(self.kpi_own_brands), names(self.kpi_competitor_brands))

    def known_queues(self) -> frozenset[str]:
        return names(self.kpi_known_queues)

    def counted_brands(self) -> frozenset[str]:
        """Brands counted under their own name (label values); others count as "other"."""
        sov = self.share_of_voice()
        return self.brand_names() | sov.own_brands | sov.competitors

    def spike_settings(self) -> SpikeSettings:
        return SpikeSettings(
            bucket_seconds=self.spike_bucket_seconds,
            min_count=self.spike_min_count,
            min_history_buckets=self.spike_min_history_buckets,
            max_p_value=self.spike_max_p_value,
        )
