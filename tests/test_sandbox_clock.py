"""The sandbox's latency model: modelled time from documented durations, parallel groups cost their max."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from automation.journal import LocalDirectoryStore, RunParameters
from automation.runbook import Parallel, Runbook, RunbookEngine, Step
from automation.sandbox.clock import LatencyClock
from automation.timings import Op, latency, timing
from tests.aws_support import CFG

START = datetime(2030, 1, 1, tzinfo=UTC)


def _runbook(clock: LatencyClock) -> Runbook:
    def charging(operation: Op):
        return lambda context: {"charged": clock.charge(operation)}

    return Runbook(
        name="latency-probe",
        description="one step, then a parallel group, then one step",
        items=(
            Step("readiness", charging(Op.READINESS_CHECKS)),
            Parallel(
                "scale-and-cache",
                (
                    Step("scale-dr", charging(Op.NODE_GROUP_SCALE_UP)),
                    Step("fail-over-cache", charging(Op.GLOBAL_DATASTORE_FAILOVER)),
                ),
            ),
            Step("promote", charging(Op.RDS_PROMOTE_REPLICA), verifies_recovery=True),
        ),
    )


def _drill(tmp_path: Path) -> tuple[LatencyClock, dict]:
    clock = LatencyClock(CFG, start=START, scale=0)
    with clock:
        engine = RunbookEngine("sandbox", LocalDirectoryStore(tmp_path), clock=clock, output=lambda _: None)
        outcome = engine.run(_runbook(clock), RunParameters(reason="test", operator="tester"))
    steps = {step.name: (step.started_at, step.finished_at, step.duration_seconds) for step in outcome.run.steps}
    return clock, steps


def test_parallel_group_costs_its_slowest_step(tmp_path: Path) -> None:
    clock, steps = _drill(tmp_path)
    readiness, scale, cache, promote = (
        latency(op, CFG)
        for op in (Op.READINESS_CHECKS, Op.NODE_GROUP_SCALE_UP, Op.GLOBAL_DATASTORE_FAILOVER, Op.RDS_PROMOTE_REPLICA)
    )
    assert clock.modelled_seconds == readiness + max(scale, cache) + promote
    # Each step of the group keeps its own duration and both start when the group starts.
    assert steps["scale-dr"][2] == scale and steps["fail-over-cache"][2] == cache
    assert steps["scale-dr"][0] == steps["fail-over-cache"][0] == steps["readiness"][1]
    assert steps["promote"][0] == steps["scale-dr"][1]


def test_same_drill_gives_the_same_numbers(tmp_path: Path) -> None:
    first, first_steps = _drill(tmp_path / "a")
    second, second_steps = _drill(tmp_path / "b")
    assert first.summary() == second.summary()
    assert first_steps == second_steps


def test_real_sleep_is_the_modelled_time_scaled_down() -> None:
    slept: list[float] = []
    clock = LatencyClock(CFG, start=START, scale=0.001, real_sleep=slept.append)
    clock.charge(Op.RDS_PROMOTE_REPLICA)
    clock.sleep(30)
    assert slept == [pytest.approx(latency(Op.RDS_PROMOTE_REPLICA) * 0.001), pytest.approx(0.03)]
    assert (clock.now() - START).total_seconds() == latency(Op.RDS_PROMOTE_REPLICA) + 30
    summary = clock.summary()
    assert summary["modelled_seconds"] == latency(Op.RDS_PROMOTE_REPLICA) + 30
    assert [charge["what"] for charge in summary["charges"]] == [Op.RDS_PROMOTE_REPLICA.value]
    assert summary["charges"][0]["basis"] == latency_basis(Op.RDS_PROMOTE_REPLICA)


def latency_basis(op: Op) -> str:
    return timing(op, CFG).basis


def test_negative_scale_or_sleep_is_refused() -> None:
    with pytest.raises(ValueError, match="scale"):
        LatencyClock(CFG, scale=-1)
    with pytest.raises(ValueError, match="cannot sleep"):
        LatencyClock(CFG, scale=0).sleep(-1)


def test_a_summary_since_a_mark_covers_only_what_came_after() -> None:
    clock = LatencyClock(CFG, start=START, scale=0)
    clock.charge(Op.RDS_CREATE_CROSS_REGION_REPLICA)  # provisioning
    mark = clock.mark()
    clock.charge(Op.RDS_PROMOTE_REPLICA)
    summary = clock.summary(since=mark)
    assert summary["modelled_seconds"] == latency(Op.RDS_PROMOTE_REPLICA)
    assert [charge["what"] for charge in summary["charges"]] == [Op.RDS_PROMOTE_REPLICA.value]
