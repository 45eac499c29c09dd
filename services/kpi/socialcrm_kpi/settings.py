"""Settings of the kpi service."""

from __future__ import annotations

from pydantic import Field

from socialcrm.labels import BrandSettings, names
from socialcrm.settings import ServiceSettings
from socialcrm_kpi.spikes import SpikeSettings
from socialcrm_kpi.windows import ShareOfVoice, WindowSpec


class KpiSettings(ServiceSettings, BrandSettings):
    service_name: str = "kpi"
    http_port: int = 8005
    kpi_windows: str = Field(
        "60,300/60",
        description="Windows as size[/step] in seconds, comma-separated (tumbling without step).",
    )
    kpi_allowed_lateness_seconds: float = Field(
        10.0, description="Event-time delay before a window closes."
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
        5.0,
        gt=0,
        description="An input partition caught up and without records this long no longer "
        "holds the watermark back.",
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
