"""`drctl failback prepare` and `switch` (with its automatic rollback), and the rollback transition."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from automation.errors import DrctlError
from automation.journal import Journal, RunParameters, RunStatus
from automation.runbook import RunFailedError
from automation.runbooks.context import RESULT
from automation.runbooks.failback import (
    ROLLBACK,
    SWITCH,
    prepare_runbook,
    rollback_runbook,
    run_failback_switch,
)
from automation.runbooks.failover import failover_runbook
from automation.stack_standin import cached_evaluation
from automation.transitions import TransitionError, rollback_config, transition_config
from components.config import ConfigError, parse_config
from components.database import plan_instances
from tests.conftest import prod_config
from tests.dr_world import DR, PRIMARY, Dr, identifier

FAILOVER = RunParameters(reason="us-east-1 outage", operator="alice", mode="emergency")
PREPARE = RunParameters(reason="us-east-1 is back", operator="alice")
SWITCH_PARAMS = RunParameters(reason="back to normal", operator="bob")


class RunnerCrashed(BaseException):
    pass


@pytest.fixture
def failed_over(tmp_path: Path) -> Dr:
    dr = Dr(tmp_path)
    dr.world.down.add(PRIMARY)
    dr.engine().run(failover_runbook(dr.ctx, "emergency"), FAILOVER)
    dr.world.down.clear()
    return dr


@pytest.fixture
def resyncing(failed_over: Dr) -> Dr:
    failed_over.engine().run(prepare_runbook(failed_over.ctx), PREPARE)
    failed_over.world.lag_seconds = 0  # the new replica has caught up
    return failed_over


def switch(dr: Dr, parameters: RunParameters = SWITCH_PARAMS):
    return run_failback_switch(dr.engine(), dr.ctx, parameters)


def generations(dr: Dr) -> tuple[dict, dict]:
    config = dr.stack.get_config()
    return json.loads(config["dr-platform:dbGeneration"]), json.loads(config["dr-platform:dbRetainedGenerations"])


def declared_identifiers(dr: Dr) -> set[str]:
    return {r.inputs["identifier"] for r in dr.stack.state.values() if r.type == "aws:rds/instance:Instance"}


# --- prepare ------------------------------------------------------------------------------------


def test_prepare_snapshots_the_old_primary_and_rebuilds_it_as_a_replica_of_dr(failed_over: Dr) -> None:
    dr = failed_over
    outcome = dr.engine().run(prepare_runbook(dr.ctx), PREPARE)
    assert outcome.status == "succeeded"
    old, new = identifier(dr.cfg, "primary", 1), identifier(dr.cfg, "primary", 2)
    assert dr.world.snapshots == [f"{old}-pre-replacement"]
    assert generations(dr) == ({"primary": 2, "dr": 1}, {"primary": [1], "dr": []})
    assert dr.stack.updates[-1].targets is None  # a full update: both regions answer
    outputs = dr.stack.outputs()
    assert outputs["drState"] == "resyncing" and outputs["database"][PRIMARY]["identifier"] == new
    assert outputs["database"][PRIMARY]["role"] == "replica" and outputs["replication"]["source"] == DR
    assert {old, new} <= declared_identifiers(dr)  # the former writer stays declared for forensics
    # First of all, the former writer is fenced and its region's compute stopped.
    assert [step.name for step in outcome.run.steps][:2] == ["fence_former_writer", "scale_former_compute_to_zero"]
    assert dr.world.fenced_writers == [old] and dr.world.read_only[PRIMARY] is True
    # What the DR bucket took while failed over is copied by an S3 Batch Replication job, awaited.
    assert list(dr.world.batch_jobs.values()) == ["Complete"]
    assert outcome.run.step("replicate_objects_written_while_failed_over").detail["status"] == "Complete"
    assert dr.world.notifications[-1][0] == DR


def test_a_failed_batch_replication_job_stops_prepare_and_the_rerun_starts_anew(failed_over: Dr) -> None:
    dr = failed_over
    dr.world.batch_job_fails = True
    with pytest.raises(RunFailedError, match="replicate_objects_written_while_failed_over"):
        dr.engine().run(prepare_runbook(dr.ctx), PREPARE)
    dr.world.batch_job_fails = False
    outcome = dr.engine().run(prepare_runbook(dr.ctx), PREPARE)
    assert outcome.status == "succeeded" and len(dr.world.snapshots) == 1
    # S3 answers a known token with the same (failed) job: the rerun asked with a new one (catalogue:
    # s3.batch-job-token-is-idempotent).
    assert list(dr.world.batch_job_states) == ["job-1", "job-2"] and len(dr.world.batch_tokens) == 2
    assert outcome.run.step("replicate_objects_written_while_failed_over").detail["job"] == "job-2"


def test_a_complete_batch_job_with_failed_tasks_is_not_success(failed_over: Dr) -> None:
    """catalogue: s3.batch-job-complete-is-not-success"""
    dr = failed_over
    dr.world.batch_failed_tasks = 1
    with pytest.raises(RunFailedError, match="job Complete with 1 of 3 tasks failed"):
        dr.engine().run(prepare_runbook(dr.ctx), PREPARE)
    # The rerun replaces the job that left a task behind with a new one (its cause fixed meanwhile).
    dr.world.batch_failed_tasks = 0
    outcome = dr.engine().run(prepare_runbook(dr.ctx), PREPARE)
    assert outcome.status == "succeeded"
    assert dr.world.batch_job_states == {"job-1": ("Complete", 1), "job-2": ("Complete", 0)}


def test_prepare_refuses_while_the_primary_region_does_not_answer(failed_over: Dr) -> None:
    failed_over.world.down.add(PRIMARY)
    with pytest.raises(RunFailedError, match="primary_region_reachable"):
        failed_over.engine().run(prepare_runbook(failed_over.ctx), PREPARE)
    assert failed_over.stack.get_config()["dr-platform:drState"] == "failed-over"


def test_prepare_resumes_after_a_crash_without_a_second_snapshot_or_generation(failed_over: Dr) -> None:
    dr = failed_over
    dr.ctx.step_hook = crash_once_at("wait_until_primary_replica_in_sync")
    with pytest.raises(RunnerCrashed):
        dr.engine().run(prepare_runbook(dr.ctx), PREPARE)
    assert dr.stack.get_config()["dr-platform:drState"] == "resyncing"
    outcome = dr.engine().run(prepare_runbook(dr.ctx), PREPARE)  # rebuilt from the resyncing config
    assert outcome.status == "succeeded" and len(dr.world.snapshots) == 1
    assert generations(dr)[0] == {"primary": 2, "dr": 1}


def crash_once_at(crash_step: str, error: BaseException | None = None):
    crashes = [crash_step]

    def hook(step: str) -> None:
        if step in crashes:
            crashes.remove(step)
            raise error or RunnerCrashed(step)

    return hook


# --- switch ---------------------------------------------------------------------------------------


def test_switch_moves_the_writer_back_and_rebuilds_the_dr_replica_last(resyncing: Dr) -> None:
    dr = resyncing
    result = switch(dr)
    assert result.result == "succeeded"
    assert generations(dr) == ({"primary": 2, "dr": 2}, {"primary": [1], "dr": [1]})
    first, rebuild = _switch_updates(dr)
    new_replica = identifier(dr.cfg, "dr", 2)
    declared = cached_evaluation(dr.stack.get_config()).by_urn()
    excluded = {declared[urn].inputs.get("identifier") for urn in first.exclude}
    assert new_replica in excluded
    assert any(declared[urn].type == "aws:eks/nodeGroup:NodeGroup" for urn in first.exclude)
    assert rebuild.targets is None and rebuild.exclude is None
    assert new_replica in declared_identifiers(dr)
    outputs = dr.stack.outputs()
    assert outputs["activeRegion"] == PRIMARY and outputs["database"][PRIMARY]["role"] == "writer"
    assert dr.world.cache_primary == PRIMARY
    assert dr.world.read_only == {PRIMARY: False, DR: False}
    report = json.loads((dr.store().root / f"reports/{result.outcome.run.run_id}.json").read_text())
    assert report["data_loss_window"]["measured_seconds"] == 0 and report["rto"]["measured_seconds"] >= 60


def _switch_updates(dr: Dr) -> list:
    """The switch's updates: the one that left the DR rebuild out, then the rebuild."""
    excluding = next(i for i, u in enumerate(dr.stack.updates) if u.exclude)
    return [dr.stack.updates[excluding], dr.stack.updates[-1]]


def test_switch_rolls_back_to_dr_when_the_error_rate_passes_five_percent(resyncing: Dr) -> None:
    dr = resyncing
    dr.world.error_rate[PRIMARY] = 0.2
    result = switch(dr)

    assert result.result == "rolled-back" and "error rate in us-east-1" in result.cause
    assert_in_rollback_state(dr)
    assert result.switch_run.status is RunStatus.FAILED
    archived = json.loads((dr.store().root / f"journal/runs/{result.switch_run.run_id}.json").read_text())
    assert archived["status"] == "abandoned"
    rollback = Journal(dr.store()).load()
    assert rollback.runbook == ROLLBACK and rollback.measurements[RESULT] == "rolled-back"
    assert dr.world.notifications[-1][1].startswith("ROLLED BACK")


def assert_in_rollback_state(dr: Dr) -> None:
    config = dr.stack.get_config()
    assert config["dr-platform:drState"] == "failed-over" and config["dr-platform:activeRegion"] == DR
    assert generations(dr) == ({"primary": 2, "dr": 1}, {"primary": [1], "dr": []})
    assert identifier(dr.cfg, "dr", 2) not in declared_identifiers(dr)  # never created, nothing to delete
    assert dr.world.cache_primary == DR
    assert dr.world.read_only[DR] is False and dr.world.read_only[PRIMARY] is True  # DR writes, primary fenced
    assert identifier(dr.cfg, "primary", 2) in dr.world.fenced_writers and dr.world.fence_raised
    assert dr.stack.outputs()["activeRegion"] == DR


def test_switch_rolls_back_when_verification_fails(resyncing: Dr) -> None:
    dr = resyncing

    def primary_goes_unhealthy(step: str) -> None:
        if step == "verify_primary_serving":
            dr.world.unhealthy.add(PRIMARY)

    dr.ctx.step_hook = primary_goes_unhealthy
    result = switch(dr)
    assert result.result == "rolled-back" and "primary_health_check_green" in result.cause
    assert_in_rollback_state(dr)


def test_a_switch_failing_before_the_read_only_window_stops_without_rollback(resyncing: Dr) -> None:
    dr = resyncing
    dr.world.slot_lag_high = True  # the replica is too far behind to open the read-only window
    with pytest.raises(RunFailedError, match="wait_until_primary_replica_close"):
        switch(dr)
    assert Journal(dr.store()).load().runbook == SWITCH
    assert dr.stack.get_config()["dr-platform:drState"] == "resyncing" and dr.world.read_only[DR] is False


def test_an_interrupted_automatic_rollback_resumes_when_the_switch_is_rerun(resyncing: Dr) -> None:
    dr = resyncing
    dr.world.error_rate[PRIMARY] = 0.2
    dr.ctx.step_hook = crash_once_at("update_stack_back_to_dr")
    with pytest.raises(RunnerCrashed):
        switch(dr)
    assert Journal(dr.store()).load().status is RunStatus.FAILED
    result = switch(dr)
    assert result.result == "rolled-back" and "error rate in us-east-1" in result.cause
    assert_in_rollback_state(dr)


def test_an_unknown_error_rate_after_the_grace_period_fails_verification_and_rolls_back(resyncing: Dr) -> None:
    dr = resyncing
    dr.world.no_traffic.add(PRIMARY)
    result = switch(dr)
    assert result.result == "rolled-back" and "still unknown" in result.cause
    assert_in_rollback_state(dr)


def test_a_failure_after_verification_is_not_rolled_back_and_rerunning_the_switch_finishes(resyncing: Dr) -> None:
    dr = resyncing
    dr.ctx.step_hook = crash_once_at("rebuild_dr_replica", error=DrctlError("replica creation refused"))
    with pytest.raises(DrctlError, match=r"is verified .* stopped at rebuild_dr_replica") as stopped:
        switch(dr)
    assert "not rolled back" in stopped.value.hint and "drctl failback switch" in stopped.value.hint
    assert dr.stack.get_config()["dr-platform:drState"] == "steady" and dr.world.cache_primary == PRIMARY
    assert Journal(dr.store()).load().runbook == SWITCH  # no rollback run
    result = switch(dr)  # the hint, followed
    assert result.result == "succeeded" and identifier(dr.cfg, "dr", 2) in declared_identifiers(dr)


def test_a_refused_rollback_names_the_manual_rollback_and_that_command_recovers(resyncing: Dr) -> None:
    dr = resyncing
    dr.world.error_rate[PRIMARY] = 0.2

    def dr_answers_no_more(step: str) -> None:
        if step == "verify_primary_serving":
            dr.world.down.add(DR)  # the rollback's preflight cannot prove the switch incomplete

    dr.ctx.step_hook = dr_answers_no_more
    with pytest.raises(DrctlError, match="automatic rollback stopped too") as stopped:
        switch(dr)
    assert "drctl failback rollback" in stopped.value.hint
    dr.world.down.clear()
    dr.ctx.step_hook = None
    manual = RunParameters(reason="finish the rollback", operator="carol", mode="manual")
    outcome = dr.engine().run(rollback_runbook(dr.ctx, "operator request"), manual, abandon_unfinished=True)
    assert outcome.status == "succeeded" and outcome.run.measurements[RESULT] == "rolled-back"
    assert_in_rollback_state(dr)


def test_the_switch_refuses_until_the_batch_replication_job_completed(resyncing: Dr) -> None:
    dr = resyncing
    dr.world.batch_jobs.clear()
    with pytest.raises(RunFailedError, match=r"objects_written_while_failed_over_replicated.*drctl failback prepare"):
        switch(dr)
    assert dr.stack.get_config()["dr-platform:drState"] == "resyncing" and dr.world.fenced_writers[-1:] != [
        identifier(dr.cfg, "dr", 1)
    ]


def test_the_switch_refuses_a_batch_job_that_left_failed_tasks(resyncing: Dr) -> None:
    """catalogue: s3.batch-job-complete-is-not-success"""
    dr = resyncing
    job = list(dr.world.batch_job_states)[-1]
    dr.world.batch_job_states[job] = ("Complete", 2)
    with pytest.raises(RunFailedError, match=r"objects_written_while_failed_over_replicated.*2 of 3 tasks failed"):
        switch(dr)
    assert dr.stack.get_config()["dr-platform:drState"] == "resyncing"


def test_a_manual_rollback_is_refused_once_the_switch_completed(resyncing: Dr) -> None:
    dr = resyncing
    switch(dr)
    manual = RunParameters(reason="changed my mind", operator="carol", mode="manual")
    with pytest.raises(RunFailedError, match="the switch completed"):
        dr.engine().run(rollback_runbook(dr.ctx, "operator request"), manual)
    assert dr.stack.get_config()["dr-platform:drState"] == "steady"


def test_the_full_cycle_with_a_rolled_back_switch_then_a_good_one(resyncing: Dr) -> None:
    dr = resyncing
    dr.world.error_rate[PRIMARY] = 0.2
    assert switch(dr).result == "rolled-back"
    dr.world.error_rate.clear()
    dr.engine().run(prepare_runbook(dr.ctx), RunParameters(reason="second try", operator="alice"))
    assert generations(dr) == ({"primary": 3, "dr": 1}, {"primary": [1, 2], "dr": []})
    assert switch(dr, RunParameters(reason="second try", operator="bob")).result == "succeeded"
    assert generations(dr) == ({"primary": 3, "dr": 3}, {"primary": [1, 2], "dr": [1]})
    assert dr.stack.outputs()["database"][DR]["sourceArn"] == dr.stack.outputs()["database"][PRIMARY]["arn"]


# --- the rollback transition (pure) --------------------------------------------------------------------


def test_rollback_config_restores_the_dr_writer_and_keeps_the_promoted_primary() -> None:
    steady = prod_config()
    failed_over = transition_config(steady, "failed-over")
    switched = transition_config(transition_config(failed_over, "resyncing"), "steady")
    rolled = rollback_config(switched)
    assert rolled["dr-platform:drState"] == "failed-over" and rolled["dr-platform:activeRegion"] == DR
    assert json.loads(rolled["dr-platform:dbGeneration"]) == {"primary": 2, "dr": 1}
    assert json.loads(rolled["dr-platform:dbRetainedGenerations"]) == {"primary": [1], "dr": []}


@pytest.mark.parametrize("state", ["failed-over", "never-failed-back"])
def test_rollback_config_refuses_anything_but_a_switched_steady_state(state: str) -> None:
    config = transition_config(prod_config(), "failed-over") if state == "failed-over" else prod_config()
    with pytest.raises(TransitionError, match="only a failback switch can be rolled back"):
        rollback_config(config)


def test_the_generation_cycle_through_a_rollback_keeps_dr_replicas_valid() -> None:
    config = transition_config(prod_config(), "failed-over")
    config = transition_config(config, "resyncing")
    config = rollback_config(transition_config(config, "steady"))
    config = transition_config(config, "resyncing")
    config = transition_config(config, "steady")
    cfg = parse_config(config)
    assert (cfg.regions["primary"].db_generation, cfg.regions["dr"].db_generation) == (3, 3)
    assert cfg.regions["dr"].db_retained_generations == (1,)
    planned = {(p.role, p.generation): p for p in plan_instances(cfg)}
    assert planned[("dr", 3)].source == ("primary", 3) and not planned[("primary", 3)].is_replica
    assert all(planned[key].retained for key in (("primary", 1), ("primary", 2), ("dr", 1)))


def test_without_the_catch_up_rule_the_dr_generation_would_fall_behind() -> None:
    """dr + 1 alone would give DR generation 2 behind primary 3, which plan_instances refuses."""
    config = transition_config(prod_config(), "failed-over")
    config = rollback_config(transition_config(transition_config(config, "resyncing"), "steady"))
    config = transition_config(config, "resyncing")
    behind = {**config, "dr-platform:drState": "steady", "dr-platform:activeRegion": PRIMARY}
    behind["dr-platform:dbGeneration"] = json.dumps({"primary": 3, "dr": 2})
    behind["dr-platform:dbRetainedGenerations"] = json.dumps({"primary": [1, 2], "dr": [1]})
    with pytest.raises(ConfigError, match=r"dbGeneration\.dr"):
        plan_instances(parse_config(behind))
