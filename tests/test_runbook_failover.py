"""`drctl failover` as a runbook: stand-in stack, fake AWS at the `automation.aws` boundary, fake clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automation.errors import DrctlError
from automation.evaluate import GLOBAL
from automation.journal import Journal, RunParameters, RunStatus, StackLock, StepStatus
from automation.runbook import RunFailedError
from automation.runbooks.context import FOLLOW_UPS, WARNINGS
from automation.runbooks.failover import failover_runbook, reconcile_dns_runbook
from automation.stack_standin import cached_evaluation
from tests.dr_world import DR, PRIMARY, STACK, Dr, identifier

EMERGENCY = RunParameters(reason="us-east-1 outage", operator="alice", mode="emergency")
GRACEFUL = RunParameters(reason="quarterly drill", operator="alice", mode="graceful")
EMERGENCY_STEPS = [
    "raise_traffic_fence",
    "record_data_loss_window",
    "wait_until_clients_reach_dr",
    "scale_dr_compute_to_full",
    "wait_until_dr_nodes_ready",
    "wait_until_dr_compute_at_full_size",
    "allow_writes_on_dr_parameter_group",
    "fail_over_global_datastore_to_dr",
    "write_failed_over_config",
    "preview_dr_region_update",
    "update_stack_in_dr_region",
    "converge_promoted_dr_database",
    "reconcile_dns_records",
    "verify_dr_serving",
    "notify_dr_alert_topic",
]


class RunnerCrashed(BaseException):
    """The drctl process dies (a BaseException, as a kill would not return through `except Exception`)."""


@pytest.fixture
def dr(tmp_path: Path) -> Dr:
    return Dr(tmp_path)


def run(dr: Dr, parameters: RunParameters = EMERGENCY):
    return dr.engine().run(failover_runbook(dr.ctx, parameters.mode), parameters)


def report(dr: Dr, run_id: str) -> dict:
    return json.loads((dr.store().root / f"reports/{run_id}.json").read_text())


def assert_updates_stay_out_of(dr: Dr, failed_region: str) -> None:
    declared = cached_evaluation(dr.stack.get_config()).by_urn()
    for update in dr.stack.updates:
        assert update.targets, "a failover update must always be targeted"
        assert update.targets[0] == dr.stack.root_urn
        assert all(declared[urn].region in (DR, GLOBAL, None) for urn in update.targets[1:])
        assert all(declared[urn].region != failed_region for urn in update.targets[1:])


# --- the emergency path ------------------------------------------------------------------------


def test_emergency_failover_promotes_dr_without_any_call_to_the_primary_region(dr: Dr) -> None:
    dr.world.down.add(PRIMARY)
    outcome = run(dr)

    assert outcome.status == "succeeded"
    assert PRIMARY not in dr.regions_called()  # Route53 is served from us-east-1: not read either
    assert_updates_stay_out_of(dr, PRIMARY)
    assert not any("aws:route53/" in urn for update in dr.stack.updates for urn in update.targets)
    journal = Journal(dr.store()).load()
    assert [step.name for step in journal.steps] == EMERGENCY_STEPS
    assert all(step.status is StepStatus.SUCCEEDED for step in journal.steps)
    assert dr.stack.config_changes == [{"dr-platform:activeRegion": DR, "dr-platform:drState": "failed-over"}]
    outputs = dr.stack.outputs()
    assert outputs["activeRegion"] == DR and outputs["database"][DR]["role"] == "writer"
    assert dr.world.node_desired[DR] == 3 and dr.world.cache_primary == DR
    assert dr.world.fence_raised is True  # the data-plane fence that keeps the returning primary out
    assert dr.world.notifications == [(DR, f"dr-platform {STACK}: failed over to {DR} (emergency)")]

    measured = report(dr, outcome.run.run_id)
    assert measured["data_loss_window"] == {"measured_seconds": 3.0, "target_seconds": 300, "met": True}
    assert measured["rto"]["target_seconds"] == 900 and measured["rto"]["met"] is True
    assert any("Route53" in warning for warning in measured["measurements"][WARNINGS])
    assert any("drctl reconcile-dns" in item for item in measured["measurements"][FOLLOW_UPS])


def test_the_promotion_follows_the_fence_while_compute_and_cache_start_at_once(dr: Dr) -> None:
    outcome = run(dr)
    steps = {step.name: step for step in outcome.run.steps}
    assert len({step.group for step in steps.values()}) == 1  # one group: each step waits only for its dependencies
    fence_done = steps["raise_traffic_fence"].finished_at
    assert steps["update_stack_in_dr_region"].started_at >= fence_done
    assert steps["verify_dr_serving"].started_at >= steps["wait_until_dr_nodes_ready"].finished_at
    calls = [method for method, _ in dr.aws.calls]
    assert calls.index("wait_for_traffic_fence") < calls.index("notify")


def test_a_repeated_failover_is_a_no_op(dr: Dr) -> None:
    run(dr)
    updates, calls = len(dr.stack.updates), len(dr.aws.calls)
    again = run(dr)
    assert again.status == "already-completed" and "nothing to do" in again.message
    assert len(dr.stack.updates) == updates and len(dr.aws.calls) == calls


@pytest.mark.parametrize("crash_at", EMERGENCY_STEPS)
def test_a_run_that_crashed_at_any_step_resumes_there(dr: Dr, crash_at: str) -> None:
    dr.world.down.add(PRIMARY)
    crashes = [crash_at]

    def crash_once(step: str) -> None:
        if step in crashes:
            crashes.remove(step)
            raise RunnerCrashed(step)

    dr.ctx.step_hook = crash_once
    with pytest.raises(RunnerCrashed):
        run(dr)
    crashed = Journal(dr.store()).load()
    assert crashed.status is RunStatus.FAILED and crashed.step(crash_at).status is StepStatus.FAILED

    outcome = run(dr)  # a new drctl process, same command
    assert outcome.status == "succeeded"
    assert outcome.run.step(crash_at).attempts == 2
    assert all(outcome.run.step(name).attempts == 1 for name in EMERGENCY_STEPS[: EMERGENCY_STEPS.index(crash_at)])
    assert PRIMARY not in dr.regions_called()
    assert len(dr.world.notifications) == 1 and dr.stack.outputs()["activeRegion"] == DR


def test_an_interrupted_stack_update_is_cleared_and_resumed(dr: Dr) -> None:
    dr.stack.fail_up(1, "interrupt")
    with pytest.raises(RunFailedError, match="update_stack_in_dr_region"):
        run(dr)
    assert dr.stack.pending
    outcome = run(dr)
    assert outcome.status == "succeeded" and not dr.stack.pending
    assert any("1 pending operation(s) of an interrupted update" in line for line in dr.lines)  # the update drops it


# --- preflight --------------------------------------------------------------------------------


def test_preflight_refuses_a_data_loss_window_above_the_rpo_and_changes_nothing(dr: Dr) -> None:
    dr.world.lag_seconds = 420
    with pytest.raises(RunFailedError, match=r"refused by its preflight.*data_loss_window_under_rpo.*lag up to 420s"):
        run(dr)
    assert Journal(dr.store()).load().status is RunStatus.REFUSED
    assert dr.stack.updates == [] and dr.stack.config_changes == [] and dr.world.notifications == []
    assert dr.world.node_desired[DR] == 1


def test_force_needs_a_reason_and_is_recorded(dr: Dr) -> None:
    dr.world.lag_seconds = 420
    forced_silently = RunParameters(reason=" ", operator="alice", mode="emergency", force=True)
    with pytest.raises(RunFailedError, match="must be recorded with a --reason"):
        run(dr, forced_silently)
    forced = RunParameters(
        reason="primary gone, losing 7 minutes accepted", operator="alice", mode="emergency", force=True
    )
    outcome = run(dr, forced)
    assert outcome.status == "succeeded"
    measured = report(dr, outcome.run.run_id)
    lag_check = next(check for check in measured["preflight"] if check["name"] == "data_loss_window_under_rpo")
    assert lag_check["passed"] and "OVERRIDDEN by --force (primary gone" in lag_check["detail"]
    assert measured["data_loss_window"] == {"measured_seconds": 420, "target_seconds": 300, "met": False}


def test_preflight_refuses_an_unhealthy_dr_region(dr: Dr) -> None:
    dr.world.unhealthy.add(DR)
    with pytest.raises(RunFailedError, match="dr_health_check_green"):
        run(dr, GRACEFUL)
    assert dr.stack.updates == []


def test_with_route53_in_the_failed_region_dr_health_is_read_from_the_dr_region_itself(dr: Dr) -> None:
    """us-east-1 down: Route53's health API is not read; the DR load balancer's targets decide."""
    dr.world.down.add(PRIMARY)
    dr.world.unhealthy.add(DR)  # no healthy target behind the DR load balancer
    with pytest.raises(RunFailedError, match="dr_load_balancer_has_healthy_targets"):
        run(dr)
    assert PRIMARY not in dr.regions_called() and ("target_health", DR) in dr.aws.calls
    assert dr.stack.updates == [] and dr.world.fence_raised is False


def test_preflight_refuses_stale_backups_in_the_dr_region(dr: Dr) -> None:
    dr.world.stale_backups.add(DR)
    with pytest.raises(RunFailedError, match=r"dr_backups_recent.*2 days"):
        run(dr)
    assert dr.stack.updates == []


def test_preflight_refuses_a_stack_that_is_not_steady(dr: Dr) -> None:
    run(dr)
    other = RunParameters(reason="again", operator="bob", mode="emergency")
    with pytest.raises(RunFailedError, match="the stack is failed-over; this runbook starts from steady"):
        run(dr, other)


def test_the_lock_refuses_a_second_run(dr: Dr) -> None:
    lease = StackLock(dr.store(), STACK, dr.clock).acquire("carol", "failback-switch")
    with pytest.raises(DrctlError, match="locked by carol"):
        run(dr)
    assert dr.stack.updates == [] and dr.aws.calls == []
    lease.release()


# --- graceful path, convergence, DNS, cache ---------------------------------------------------------


def test_graceful_failover_fences_the_writer_waits_for_every_write_and_moves_dns(dr: Dr) -> None:
    dr.world.lag_seconds = 240  # an idle primary: ReplicaLag high, nothing missing
    outcome = run(dr, GRACEFUL)
    names = [step.name for step in outcome.run.steps]
    # The fence and the DR capacity come up together; the final sync follows the fence; the promotion follows both.
    assert names.index("fence_primary_writer") < names.index("wait_until_dr_replica_has_everything")
    assert names.index("wait_until_dr_replica_has_everything") < names.index("update_stack_in_dr_region")
    assert names.index("scale_dr_compute_to_full") < names.index("update_stack_in_dr_region")
    assert dr.world.fenced_writers == [identifier(dr.cfg, "primary", 1)] and dr.world.fence_raised
    assert ("wait_until_replica_has_everything", PRIMARY) in dr.aws.calls  # the source's slot, not ReplicaLag
    assert report(dr, outcome.run.run_id)["data_loss_window"]["measured_seconds"] == 0
    # Both control planes answer: the records move in the update that promotes, not in one after it.
    (update,) = dr.stack.updates
    assert update.targets[0] == dr.stack.root_urn
    assert any("aws:route53/" in urn for urn in update.targets)
    assert outcome.run.measurements["dns_reconciled"] is True


def test_graceful_failover_whose_final_sync_times_out_stops_journaled_and_resumes(dr: Dr) -> None:
    dr.world.final_sync_fails = True
    with pytest.raises(RunFailedError, match="wait_until_dr_replica_has_everything"):
        run(dr, GRACEFUL)
    assert dr.stack.config_changes == [] and dr.world.read_only[PRIMARY] is True
    dr.world.final_sync_fails = False
    outcome = run(dr, GRACEFUL)
    assert outcome.status == "succeeded" and outcome.run.step("fence_primary_writer").attempts == 1


def test_convergence_repeats_the_targeted_update_until_the_promoted_instance_is_complete(dr: Dr) -> None:
    dr.world.settings_lag = 1
    outcome = run(dr)
    assert outcome.run.step("converge_promoted_dr_database").detail["extraUpdates"] == 1
    assert len(dr.stack.updates) == 2
    assert_updates_stay_out_of(dr, PRIMARY)


def test_convergence_gives_up_after_its_bound_with_a_clear_error(dr: Dr) -> None:
    dr.world.settings_lag = 99
    with pytest.raises(RunFailedError, match="did not converge after 2 more update"):
        run(dr)
    journal = Journal(dr.store()).load()
    step = journal.step("converge_promoted_dr_database")
    assert step.status is StepStatus.FAILED and "backup retention 0 < 7 days" in step.error
    assert journal.status is RunStatus.FAILED and len(dr.stack.updates) == 3
    assert report(dr, journal.run_id)["status"] == "failed"


def test_a_graceful_switch_is_not_done_until_dns_moved_and_the_hint_resumes_it(dr: Dr) -> None:
    dr.world.route53_down = True
    with pytest.raises(RunFailedError, match="update_stack_in_dr_region") as failed:
        run(dr, GRACEFUL)
    journal = Journal(dr.store()).load()
    assert "rerun the same `drctl failover --mode graceful` command" in journal.step("update_stack_in_dr_region").error
    assert "rerun the same command" in failed.value.hint
    dr.world.route53_down = False
    outcome = run(dr, GRACEFUL)  # the hint, followed
    assert outcome.status == "succeeded" and outcome.run.measurements["dns_reconciled"] is True
    assert outcome.run.step("fence_primary_writer").attempts == 1


def test_an_emergency_with_route53_down_warns_and_reconcile_dns_fixes_it_later(dr: Dr) -> None:
    dr.world.route53_down = True
    outcome = run(dr)
    assert outcome.status == "succeeded"
    assert outcome.run.measurements["dns_reconciled"] is False
    assert any("drctl reconcile-dns" in item for item in outcome.run.measurements[FOLLOW_UPS])
    verify = outcome.run.step("verify_dr_serving")
    assert any(f"answers {DR}" in check.detail and "not reconciled yet" in check.detail for check in verify.checks)

    dr.world.route53_down = False
    params = RunParameters(reason="Route53 is back", operator="alice", options={"drState": "failed-over"})
    reconciled = dr.engine().run(reconcile_dns_runbook(dr.ctx), params)
    assert reconciled.status == "succeeded"
    assert all("aws:route53/" in urn for urn in dr.stack.updates[-1].targets[1:])


def test_emergency_failover_carries_on_when_the_cache_cannot_fail_over_and_says_where_it_stands(dr: Dr) -> None:
    dr.world.cache_failover_fails = True
    outcome = run(dr)
    assert outcome.status == "succeeded"
    assert any("disassociate-global-replication-group" in item for item in outcome.run.measurements[FOLLOW_UPS])
    assert "read-only secondary" in outcome.run.measurements["cache_state"]
    assert dr.world.notifications  # the promotion was not held up by the cache


def test_graceful_failover_stops_when_the_cache_cannot_fail_over(dr: Dr) -> None:
    dr.world.cache_failover_fails = True
    with pytest.raises(RunFailedError, match="fail_over_global_datastore_to_dr"):
        run(dr, GRACEFUL)
    assert dr.stack.config_changes == []


def test_dry_run_prints_the_plan_and_changes_nothing(dr: Dr) -> None:
    outcome = dr.engine().run(failover_runbook(dr.ctx, "emergency"), EMERGENCY, dry_run=True)
    text = "\n".join(outcome.plan)
    assert outcome.status == "planned"
    assert "[ok] data_loss_window_under_rpo" in text and "in parallel (failover)" in text
    assert "after: preview_dr_region_update, scale_dr_compute_to_full, raise_traffic_fence" in text
    assert "would change: set dr-platform:activeRegion=us-west-2" in text
    assert "update_stack_in_dr_region" in text and f"(in {DR}" in text
    assert dr.stack.config_changes == [] and dr.stack.updates == []
    assert {method for method, _ in dr.aws.calls} <= {
        "database_role",
        "data_loss_window",
        "health_check",
        "target_health",
        "node_group",
        "traffic_fence",
        "recovery_point_age",
    }
    assert not dr.store().root.exists()


def test_verification_wants_as_many_healthy_dr_targets_as_serving_nodes_not_one(dr: Dr) -> None:
    """W11: the full node group's minimum (3 in prod) serves; one healthy pod behind the DR load balancer is not
    a recovered service, although it is enough before the failover (standby size). InService nodes alone do not
    pass it (catalogue: eks.inservice-is-not-node-ready)."""
    dr.world.healthy_targets[DR] = 1
    with pytest.raises(RunFailedError, match="verify_dr_serving"):
        run(dr)
    journal = Journal(dr.store()).load()
    (check,) = [c for c in journal.step("verify_dr_serving").checks if c.name == "dr_load_balancer_has_healthy_targets"]
    assert not check.passed and "1 healthy" in check.detail and "expected 3" in check.detail
    assert "ok" in next(c.detail for c in journal.preflight if c.name == "dr_load_balancer_has_healthy_targets")

    dr.world.healthy_targets[DR] = 3  # the rest of the pods pass the load balancer's health checks: a rerun resumes
    assert run(dr).status == "succeeded"
