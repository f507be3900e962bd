"""Leader election's pure parts: timing validation, the expiry judgement (by
observed time, never by the holder's timestamps), the record a candidate
writes, and MicroTime formatting. The protocol itself runs against the real
API server in tests/integration/test_leader.py.
"""

from __future__ import annotations

import datetime
from typing import Any, cast

import pytest
from kubernetes_asyncio import client

from eni_controller.kube.leader import (
    DEFAULT_LEASE_NAME,
    LeaderElector,
    acquirable,
    micro_time,
    next_record,
)

API = cast(client.ApiClient, object())  # never called: these tests do no I/O
T0 = datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.UTC)
T1 = T0 + datetime.timedelta(seconds=7)


def lease_spec(
    holder: str, duration: int, acquired: datetime.datetime, renewed: datetime.datetime, n: int
) -> client.V1LeaseSpec:
    return client.V1LeaseSpec(
        holder_identity=holder or None,
        lease_duration_seconds=duration,
        acquire_time=acquired,
        renew_time=renewed,
        lease_transitions=n,
    )


def held_by(holder: str, *, duration: int = 15, transitions: int = 3) -> client.V1LeaseSpec:
    return lease_spec(holder, duration, T0, T0, transitions)


def make(**kwargs: Any) -> LeaderElector:
    return LeaderElector(API, namespace="default", identity="me", **kwargs)


def test_defaults_are_client_gos() -> None:
    elector = make()
    assert elector.name == DEFAULT_LEASE_NAME == "nodeeni-controller-leader-election"
    assert (elector.lease_duration, elector.renew_deadline, elector.retry_period) == (15, 10, 2)
    assert not elector.is_leader
    assert elector.holder == ""


@pytest.mark.parametrize(
    ("timings", "message"),
    [
        ({"lease_duration": 10, "renew_deadline": 10}, "renew_deadline"),
        ({"lease_duration": 5, "renew_deadline": 10}, "renew_deadline"),
        ({"renew_deadline": 2, "retry_period": 2}, "retry_period"),
        ({"renew_deadline": 2, "retry_period": 3}, "retry_period"),
        ({"retry_period": 0}, "positive"),
        ({"lease_duration": -1}, "positive"),
    ],
)
def test_timings_must_nest(timings: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make(**timings)


def test_identity_is_required() -> None:
    with pytest.raises(ValueError, match="identity"):
        LeaderElector(API, namespace="default", identity="")


def test_short_test_timings_are_accepted() -> None:
    elector = make(lease_duration=2, renew_deadline=1.5, retry_period=0.3)
    assert elector.lease_duration == 2


def test_expiry_counts_from_observation() -> None:
    record = held_by("other", duration=15)
    assert not acquirable(record, identity="me", observed_at=100.0, now=114.9)
    assert acquirable(record, identity="me", observed_at=100.0, now=115.0)


@pytest.mark.parametrize("holder", ["", "me"])
def test_an_empty_or_own_lease_is_always_acquirable(holder: str) -> None:
    record = held_by(holder)
    assert acquirable(record, identity="me", observed_at=100.0, now=100.0)


def test_another_holder_blocks_until_its_duration_has_passed_since_we_saw_it() -> None:
    record = held_by("other", duration=15)
    assert not acquirable(record, identity="me", observed_at=100.0, now=114.0)
    assert acquirable(record, identity="me", observed_at=100.0, now=115.0)


def test_an_old_renew_time_does_not_make_a_just_seen_lease_expired() -> None:
    # the holder's clock (or a stale record) says an hour ago; we only just saw it
    ancient = T0 - datetime.timedelta(hours=1)
    assert not acquirable(
        lease_spec("other", 15, ancient, ancient, 0), identity="me", observed_at=100.0, now=100.1
    )


def test_the_records_own_duration_decides_not_ours() -> None:
    released = held_by("other", duration=1)  # e.g. a short lease written by another config
    assert acquirable(released, identity="me", observed_at=100.0, now=101.0)


def test_renewal_keeps_acquire_time_and_transitions() -> None:
    renewed = next_record(held_by("me"), identity="me", lease_duration_seconds=15, now=T1)
    assert renewed == lease_spec("me", 15, T0, T1, 3)


@pytest.mark.parametrize("previous", ["other", ""])
def test_takeover_counts_a_transition_and_restarts_acquire_time(previous: str) -> None:
    taken = next_record(held_by(previous), identity="me", lease_duration_seconds=15, now=T1)
    assert taken == lease_spec("me", 15, T1, T1, 4)


def test_a_new_lease_starts_at_zero_transitions() -> None:
    assert next_record(None, identity="me", lease_duration_seconds=2, now=T1) == lease_spec(
        "me", 2, T1, T1, 0
    )


def test_an_empty_lease_is_acquirable() -> None:
    assert acquirable(client.V1LeaseSpec(), identity="me", observed_at=100.0, now=100.0)


def test_micro_time_always_serializes_six_fraction_digits() -> None:
    whole = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert whole.isoformat() == "2026-01-02T03:04:05+00:00"  # what the server would refuse
    assert micro_time(whole).isoformat() == "2026-01-02T03:04:05.000001+00:00"
    assert micro_time(T0) == T0
