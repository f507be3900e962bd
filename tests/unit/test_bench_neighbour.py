"""The neighbour bench's arithmetic: which answers fall in the rollout's window,
the achieved rate and throttled share, the targets (a ratio the burst alone
covers is no target) and the generated doc section."""

from __future__ import annotations

from typing import Any

import pytest

from bench.neighbour import (
    THROTTLED,
    Answer,
    ControllerFigures,
    Neighbour,
    NeighbourResult,
    _judge,
)
from bench.report import NEIGHBOUR_MARKER, render
from bench.scenarios import PRODUCT_LIMITS, minimum_seconds
from tests.harness.ec2world import World


def neighbour(answers: list[Answer], *, rate: float = 2.5) -> Neighbour:
    world: Any = World(
        endpoint="http://127.0.0.1:1",
        region="us-east-1",
        vpc_id="vpc-1",
        subnets=(),
        security_groups=(),
        instances=(),
    )
    n = Neighbour(world, rate=rate)
    n.answers = answers
    return n


def test_only_requests_sent_during_the_rollout_count() -> None:
    answers = [Answer(sent_at=t / 2.5, code=None) for t in range(100)]  # 40 s at 2.5/s
    answers[30] = Answer(sent_at=answers[30].sent_at, code=THROTTLED)
    answers[31] = Answer(sent_at=answers[31].sent_at, code="InternalError")
    answers[5] = Answer(sent_at=answers[5].sent_at, code=THROTTLED)  # in the warm-up
    figures = neighbour(answers).figures(since=10.0, until=30.0)
    assert figures.sent == 50
    assert figures.throttled == 1
    assert figures.other_errors == {"InternalError": 1}
    assert figures.answered_ok == 48
    assert figures.achieved_per_second == pytest.approx(2.4)
    assert figures.rate_share == pytest.approx(0.96)
    assert figures.throttled_share == pytest.approx(0.02)


def test_the_minimum_for_the_share_is_the_product_bucket_arithmetic() -> None:
    bucket = PRODUCT_LIMITS.mutating
    assert (bucket.capacity, bucket.refill_per_second) == (22, 2.25)
    assert minimum_seconds(600, bucket) == pytest.approx((600 - 22) / 2.25)
    assert minimum_seconds(12, bucket) == 0.0  # the burst covers it


def _result(*, ratio: float | None, controller_throttled: int = 0) -> NeighbourResult:
    answers = [Answer(sent_at=t / 2.5, code=None) for t in range(100)]
    result = NeighbourResult(
        shape="Throttled: 20 nodes x 10 ENIs under AWS-default buckets",
        aws_mutating_bucket="50 burst, 5 per s",
        budget_share=0.5,
        neighbour=neighbour(answers).figures(since=0.0, until=40.0),
        controller=ControllerFigures(
            enis=200,
            succeeded=200,
            seconds=270.0,
            mutating_calls_needed=600,
            client_mutating_bucket="22 burst, 2.25 per s",
            share_min_seconds=256.9,
            ratio_to_share_minimum=ratio,
            ec2_requests=700,
            throttled=controller_throttled,
            throttled_share=round(controller_throttled / 700, 4),
            ec2_calls={"CreateNetworkInterface": 200},
        ),
        load={"start": "1.0", "end": "2.0"},
    )
    _judge(result)
    return result


def test_targets() -> None:
    result = _result(ratio=1.051, controller_throttled=14)
    assert {k: t["met"] for k, t in result.targets.items()} == {
        "neighbour_rate_share": True,
        "neighbour_throttled_share": True,
        "controller_throttled_share": False,  # 2%
        "ratio_to_share_minimum": True,
    }
    assert "ratio_to_share_minimum" not in _result(ratio=None).targets


def test_the_doc_section_shows_both_clients_and_the_targets() -> None:
    text = render(f"a\n{NEIGHBOUR_MARKER}\nb", {}, neighbour=_result(ratio=1.051).to_json())
    lines = text.splitlines()
    assert lines[0] == "a"
    assert lines[-1] == "b"
    assert (
        "| neighbour (CreateTags, open loop, no retries) | 2.5 per s | 2.50 per s (100.0%) "
        "| 0 of 100 (0.00%) | 40 s (the rollout) |"
    ) in lines
    assert (
        "| controller (200 ENIs, 600 mutating calls) | its share: 22 burst, 2.25 per s "
        "| 200 / 200 ENIs attached | 0 of 700 (0.00%) "
        "| 270.0 s; minimum for its share 256.9 s, ratio **1.051** |"
    ) in lines
    assert "| controller ≤ 1.1 x the bucket minimum for its share | 1.051 | met |" in lines
