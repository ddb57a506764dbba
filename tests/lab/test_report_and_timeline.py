"""The drill report's verdict and text, and the timeline picture."""

from __future__ import annotations

import json
from pathlib import Path

from payments_dr.lab.timeline import bucket_counts, draw_timeline

from .helpers import report


def test_a_lost_payment_fails_the_drill() -> None:
    assert report().passed
    assert not report(payments_lost=1).passed


def test_failover_beyond_the_budget_or_a_failed_check_fails_the_drill() -> None:
    assert not report(failover_seconds=151.0).passed
    assert not report(failed_checks=["no payment was served by us-east-2"]).passed


def test_text_is_labelled_a_simulation_and_names_the_real_counterpart() -> None:
    text = report().to_text()
    assert text.startswith("SIMULATION")
    assert "payments-dr drill --on-aws" in text
    assert "40.0 s simulated (0.80 s wall)" in text
    assert text.endswith("result: PASSED")


def test_json_round_trips_with_the_verdict() -> None:
    data = json.loads(report(payments_lost=2).to_json())
    assert data["passed"] is False
    assert data["payments_lost"] == 2
    assert data["simulated"] is True


def test_buckets_count_answers_per_region_and_failures_apart() -> None:
    starts, series = bucket_counts(report(), bucket_seconds=20.0)
    assert starts == [0.0, 20.0, 40.0, 60.0]
    assert series["us-east-1"] == [2, 0, 0, 0]
    assert series["us-east-2"] == [0, 0, 0, 1]
    assert series[""] == [0, 2, 0, 0]  # no answer, and a 503


def test_timeline_picture_is_written_as_png(tmp_path: Path) -> None:
    path = draw_timeline(report(), tmp_path / "nested" / "drill.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
