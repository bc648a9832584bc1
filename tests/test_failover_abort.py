"""W5: a graceful failover fences the primary only once DR is ready, and `drctl failover abort` undoes a failover
that has not promoted the DR database."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from automation import cli
from automation.aws.waiting import WaitTimeoutError
from automation.errors import DrctlError
from automation.journal import Journal, RunParameters, RunStatus
from automation.runbook import RunFailedError
from automation.runbooks import commands
from automation.runbooks.failover import failover_runbook
from tests.dr_world import DR, PRIMARY, STACK, Dr

GRACEFUL = RunParameters(reason="planned switch", operator="alice", mode="graceful")
EMERGENCY = RunParameters(reason="us-east-1 outage", operator="alice", mode="emergency")
runner = CliRunner()


@pytest.fixture
def dr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Dr:
    platform = Dr(tmp_path / "journal")
    env = commands.Environment(platform.ctx, platform.store(), operator="alice")
    platform.ctx.record_dr_state = commands.dr_state_recorder(env)
    monkeypatch.setattr(commands, "open_environment", lambda stack, journal, local_journal: env)
    monkeypatch.chdir(tmp_path)
    return platform


def fail_over(dr: Dr, parameters: RunParameters) -> None:
    with pytest.raises(RunFailedError):
        dr.engine().run(failover_runbook(dr.ctx, parameters.mode), parameters)


def abort(*options: str):
    return runner.invoke(cli.app, ["failover", "abort", "--reason", "DR not ready", "--yes", *options])


def test_a_graceful_failover_whose_dr_nodes_never_come_up_leaves_the_primary_writable(
    dr: Dr, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_capacity(region: str, cluster: str, node_group: str, desired: int) -> int:
        raise WaitTimeoutError(f"{node_group} to have {desired} nodes InService", 900, "0 InService")

    monkeypatch.setattr(dr.aws, "wait_until_nodes_ready", no_capacity)
    fail_over(dr, GRACEFUL)
    assert dr.world.fenced_writers == [] and dr.world.read_only[PRIMARY] is False  # production still takes writes
    assert ("fence_writer", PRIMARY) not in dr.aws.calls


def test_abort_after_a_graceful_failover_stopped_at_the_final_sync_opens_the_primary_again(dr: Dr) -> None:
    dr.world.final_sync_fails = True
    fail_over(dr, GRACEFUL)
    assert dr.world.read_only[PRIMARY] is True  # fenced, and the replica never got everything
    dr.world.cache_primary = DR  # the cache's writer moved beside the final sync
    failover_run = Journal(dr.store()).load()

    result = abort()
    assert result.exit_code == 0, result.output
    assert dr.world.read_only[PRIMARY] is False and dr.world.cache_primary == PRIMARY
    assert dr.world.fence_raised is False and dr.cfg.dr_state.value == "steady" and dr.cfg.active_region == PRIMARY
    assert dr.world.node_desired[DR] == dr.cfg.standby_node_group.desired
    archived = json.loads((dr.store().root / f"journal/runs/{failover_run.run_id}.json").read_text())
    assert archived["status"] == RunStatus.ABANDONED.value
    finished = Journal(dr.store()).load()
    assert finished.runbook == "failover-abort" and finished.parameters.reason == "DR not ready"
    assert any("ABORTED" in subject for _, subject in dr.world.notifications)


def test_abort_of_an_emergency_failover_stopped_before_promotion_lowers_the_fence_and_restores_steady(
    dr: Dr,
) -> None:
    def update_refused(step: str) -> None:
        if step == "update_stack_in_dr_region":
            raise DrctlError("the update was refused")

    dr.ctx.step_hook = update_refused
    fail_over(dr, EMERGENCY)
    assert dr.world.fence_raised and dr.cfg.dr_state.value == "failed-over"  # traffic pinned to a read-only DR
    dr.ctx.step_hook = None

    result = abort("--json")
    assert result.exit_code == 0, result.output
    assert dr.world.fence_raised is False and dr.cfg.dr_state.value == "steady" and dr.cfg.active_region == PRIMARY
    authority = commands.DrStateAuthority(dr.store(), STACK).read()
    assert authority is not None and authority.keys["dr-platform:drState"] == "steady"
    assert authority.run_id.startswith("failover-abort-")


def test_abort_is_refused_once_the_dr_database_is_promoted_and_the_failover_stays_resumable(dr: Dr) -> None:
    def converge_fails(step: str) -> None:
        if step == "converge_promoted_dr_database":
            raise DrctlError("converge refused")

    dr.ctx.step_hook = converge_fails
    fail_over(dr, EMERGENCY)  # promoted, then stopped
    dr.ctx.step_hook = None
    unfinished = Journal(dr.store()).load()

    result = abort()
    assert result.exit_code != 0
    message = str(result.exception)
    assert "promoted" in message and "drctl failback prepare" in message
    assert dr.world.fence_raised is True and dr.cfg.dr_state.value == "failed-over"
    still = Journal(dr.store()).load()
    assert still.run_id == unfinished.run_id and not still.finished  # rerunning the failover resumes it


def test_abort_after_a_completed_failover_is_refused_by_its_preflight(dr: Dr) -> None:
    dr.engine().run(failover_runbook(dr.ctx, "emergency"), EMERGENCY)
    result = abort()
    assert result.exit_code != 0 and "drctl failback prepare" in str(result.exception)
    assert dr.world.fence_raised is True and dr.cfg.active_region == DR


def test_abort_is_refused_while_a_promotion_may_be_under_way(dr: Dr, monkeypatch: pytest.MonkeyPatch) -> None:
    """catalogue: rds.promotion-is-asynchronous (a promoting replica still names its source, status modifying)"""
    dr.world.final_sync_fails = True
    fail_over(dr, GRACEFUL)
    described = dr.aws.describe_database

    def promoting(region: str, identifier: str):
        instance = described(region, identifier)
        return dataclasses.replace(instance, status="modifying") if region == DR else instance

    monkeypatch.setattr(dr.aws, "describe_database", promoting)
    result = abort()
    assert result.exit_code != 0 and "a promotion may be under way" in str(result.exception)
    assert dr.world.read_only[PRIMARY] is True  # nothing changed
