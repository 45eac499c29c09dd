"""Watermarks per input partition: the lowest wins, idle partitions stop holding it back."""

from __future__ import annotations

from socialcrm_kpi.watermarks import PartitionWatermarks

A, B = ("social.routed.v1", 0), ("social.routed.v1", 1)
R = ("social.replies.v1", 0)


def test_the_stream_watermark_is_the_lowest_partition_watermark() -> None:
    marks = PartitionWatermarks(idle_seconds=5)
    marks.assign([A, B], now=0)
    marks.observe(A, 1000, now=1)
    marks.observe(B, 400, now=1)
    marks.observe(A, 900, now=1)  # out of order on A: its watermark stays at its maximum
    assert marks.watermark(now=2, caught_up={A, B}) == 400


def test_a_partition_read_ahead_does_not_make_the_others_late() -> None:
    marks = PartitionWatermarks(idle_seconds=5)
    marks.assign([A, B], now=0)
    marks.observe(A, 10_000, now=1)  # a batch minutes ahead, B not read yet
    assert marks.watermark(now=2, caught_up={A}) == float("-inf")


def test_an_idle_caught_up_partition_no_longer_holds_the_watermark() -> None:
    marks = PartitionWatermarks(idle_seconds=5)
    marks.assign([A, B], now=0)
    marks.observe(A, 1000, now=1)
    marks.observe(B, 400, now=1)
    assert marks.watermark(now=5.9, caught_up={A, B}) == 400
    marks.observe(A, 1010, now=6)
    assert marks.watermark(now=6.1, caught_up={A, B}) == 1010  # B idle since 1
    # Not caught up: records are waiting, so B is not idle however long it was quiet.
    assert marks.watermark(now=6.1, caught_up={A}) == 400


def test_every_partition_idle_gives_no_watermark_the_wall_clock_takes_over() -> None:
    marks = PartitionWatermarks(idle_seconds=5)
    marks.assign([A, R], now=0)
    assert marks.watermark(now=4, caught_up={A, R}) == float("-inf")
    assert marks.watermark(now=5, caught_up={A, R}) is None


def test_revoked_partitions_are_forgotten() -> None:
    marks = PartitionWatermarks(idle_seconds=5)
    marks.assign([A, B], now=0)
    marks.observe(A, 1000, now=1)
    marks.revoke([B])
    assert marks.partitions == {A}
    assert marks.watermark(now=2, caught_up=set()) == 1000
