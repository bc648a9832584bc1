"""The runbook engine: order, concurrency, resume, no-op repeats, checks, timeouts, dry-run, reports.

The last section composes a small failover runbook from the engine, the
in-process stack stand-in, the target rules and fake AWS actions, the way the
real runbooks are meant to be built.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from automation.errors import DrctlError
from automation.evaluate import GLOBAL
from automation.journal import (
    CURRENT_RUN_KEY,
    DocumentStore,
    Journal,
    LocalDirectoryStore,
    RunParameters,
    RunStatus,
    StackLock,
    StepStatus,
    StoredObject,
    local_store,
)
from automation.runbook import (
    DATA_LOSS_WINDOW,
    TARGETS,
    Check,
    CheckFailedError,
    Parallel,
    Runbook,
    RunbookEngine,
    RunContext,
    RunFailedError,
    StackStillBusyError,
    Step,
)
from automation.stack import ChangeSummary, Diagnostic, PendingOperation, ResourceStep, StackAdapter
from automation.stack_standin import StandInStack, cached_evaluation
from automation.targets import refuse_failed_region_targets, surviving_region_targets
from automation.transitions import transition_config
from components.config import DrState, parse_config
from tests.conftest import prod_config
from tests.fake_clock import FakeClock, fixed_clock

STACK = "organization/dr-platform/prod"
PARAMS = RunParameters(reason="quarterly drill", operator="alice", mode="emergency")


@dataclass
class Harness:
    root: Path
    clock: FakeClock = field(default_factory=fixed_clock)
    lines: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    mutex: threading.Lock = field(default_factory=threading.Lock)

    def store(self) -> LocalDirectoryStore:
        return local_store(STACK, root=self.root)

    def engine(self, store: DocumentStore | None = None, **options: Any) -> RunbookEngine:
        """A fresh engine over the same journal directory: what a new drctl process would build."""
        return RunbookEngine(STACK, store or self.store(), clock=self.clock, output=self.lines.append, **options)

    def action(self, name: str, seconds: float = 0) -> Callable[[RunContext], Mapping[str, Any]]:
        def act(context: RunContext) -> Mapping[str, Any]:
            with self.mutex:
                if self.failures.get(name, 0) > 0:
                    self.failures[name] -= 1
                    raise RuntimeError(f"{name} broke")
            if seconds:
                context.sleep(seconds)
            with self.mutex:
                self.done.append(name)
            return {"did": name}

        return act

    def runbook(self, **step_options: Any) -> Runbook:
        return Runbook(
            name="rehearsal",
            description="a runbook shaped like failover",
            items=(
                Step("check_dr_readiness", self.action("check_dr_readiness"), "read readiness"),
                Parallel(
                    "prepare_dr",
                    (
                        Step("scale_dr_compute", self.action("scale_dr_compute", 60), "scale"),
                        Step("fail_over_cache", self.action("fail_over_cache", 30), "cache"),
                    ),
                ),
                Step("promote_dr_database", self.action("promote_dr_database", 240), "promote", **step_options),
                Step("verify_services", self.action("verify_services"), "verify", verifies_recovery=True),
            ),
            rto_target_seconds=900,
            rpo_target_seconds=300,
        )


STEP_NAMES = ["check_dr_readiness", "scale_dr_compute", "fail_over_cache", "promote_dr_database", "verify_services"]


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


def _statuses(store: DocumentStore) -> dict[str, str]:
    run = Journal(store).load()
    assert run is not None
    return {step.name: step.status.value for step in run.steps}


class RecordingStore:
    """Wraps a store and keeps every journal document written, to see each transition."""

    def __init__(self, inner: DocumentStore) -> None:
        self.inner = inner
        self.journal_writes: list[dict[str, Any]] = []

    @property
    def location(self) -> str:
        return self.inner.location

    def read(self, key: str) -> StoredObject | None:
        return self.inner.read(key)

    def create(self, key: str, data: bytes) -> str:
        self._keep(key, data)
        return self.inner.create(key, data)

    def replace(self, key: str, data: bytes, expected_version: str | None) -> str:
        self._keep(key, data)
        return self.inner.replace(key, data, expected_version)

    def delete(self, key: str, expected_version: str | None = None) -> None:
        self.inner.delete(key, expected_version)

    def _keep(self, key: str, data: bytes) -> None:
        if key == CURRENT_RUN_KEY:
            self.journal_writes.append(json.loads(data))


# --- order, journal, concurrency -----------------------------------------------------------


def test_steps_run_in_order_and_every_transition_is_journaled(harness: Harness) -> None:
    store = RecordingStore(harness.store())
    outcome = harness.engine(store).run(harness.runbook(), PARAMS)
    assert outcome.status == "succeeded"
    assert harness.done[0] == "check_dr_readiness"
    assert set(harness.done[1:3]) == {"scale_dr_compute", "fail_over_cache"}
    assert harness.done[3:] == ["promote_dr_database", "verify_services"]

    seen: dict[str, list[str]] = {}
    for document in store.journal_writes:
        for step in document["steps"]:
            statuses = seen.setdefault(step["name"], [])
            if not statuses or statuses[-1] != step["status"]:
                statuses.append(step["status"])
    assert all(seen[name] == ["pending", "running", "succeeded"] for name in STEP_NAMES)
    assert store.journal_writes[-1]["status"] == "succeeded"
    assert Journal(harness.store()).load().status is RunStatus.SUCCEEDED


def test_a_parallel_group_really_runs_its_steps_at_the_same_time(harness: Harness) -> None:
    both_running = threading.Barrier(2, timeout=5)

    def meet(context: RunContext) -> None:
        both_running.wait()  # breaks (and fails the step) unless the other step runs concurrently

    runbook = Runbook(
        "parallel",
        "two independent steps",
        (Parallel("prepare_dr", (Step("scale_dr_compute", meet), Step("fail_over_cache", meet))),),
    )
    harness.engine().run(runbook, PARAMS)
    assert _statuses(harness.store()) == {"scale_dr_compute": "succeeded", "fail_over_cache": "succeeded"}
    assert Journal(harness.store()).load().step("fail_over_cache").group == "prepare_dr"


# --- resume, repeat -------------------------------------------------------------------------


@pytest.mark.parametrize("failing", STEP_NAMES)
def test_a_run_that_failed_at_any_step_resumes_there_without_redoing_done_steps(harness: Harness, failing: str) -> None:
    harness.failures[failing] = 1
    with pytest.raises(RunFailedError, match=f"stopped at step {failing}") as stopped:
        harness.engine().run(harness.runbook(), PARAMS)
    assert "rerun the same command" in (stopped.value.hint or "")
    statuses = _statuses(harness.store())
    assert statuses[failing] == "failed"
    position = STEP_NAMES.index(failing)
    before = [n for n in STEP_NAMES[:position] if {n, failing} != {"scale_dr_compute", "fail_over_cache"}]
    assert all(statuses[name] == "succeeded" for name in before)
    assert all(statuses[name] == "pending" for name in STEP_NAMES[position + 1 :] if name != "fail_over_cache")
    assert Journal(harness.store()).load().status is RunStatus.FAILED

    done_before = list(harness.done)
    outcome = harness.engine().run(harness.runbook(), PARAMS)  # a new process, same journal
    assert outcome.status == "succeeded"
    assert sorted(harness.done) == sorted(STEP_NAMES)  # each step's action completed exactly once
    assert failing not in done_before
    run = Journal(harness.store()).load()
    assert run.step(failing).attempts == 2
    assert all(run.step(name).attempts == 1 for name in done_before)
    assert [a["operator"] for a in run.attempts] == ["alice", "alice"]
    assert any("resuming rehearsal" in line for line in harness.lines)


class FreezingStore(RecordingStore):
    """A store whose writes stop mattering once frozen: the drctl process was killed."""

    frozen = False

    def create(self, key: str, data: bytes) -> str:
        return "frozen" if self.frozen else super().create(key, data)

    def replace(self, key: str, data: bytes, expected_version: str | None) -> str:
        return "frozen" if self.frozen else super().replace(key, data, expected_version)

    def delete(self, key: str, expected_version: str | None = None) -> None:
        if not self.frozen:
            super().delete(key, expected_version)


class ProcessKilledError(BaseException):
    pass


def test_a_run_killed_mid_step_resumes_after_the_stale_lock_is_broken(harness: Harness) -> None:
    store = FreezingStore(harness.store())
    promoted: list[bool] = []

    def promote_then_die(context: RunContext) -> None:
        promoted.append(True)  # the effect happened...
        store.frozen = True  # ...then the process died before journaling anything else
        raise ProcessKilledError

    runbook = harness.runbook()
    killed = Runbook(
        runbook.name,
        runbook.description,
        (
            *runbook.items[:2],
            Step("promote_dr_database", promote_then_die, already_done=lambda context: bool(promoted)),
            runbook.items[3],
        ),
    )
    with pytest.raises(ProcessKilledError):
        harness.engine(store).run(killed, PARAMS)
    assert _statuses(harness.store())["promote_dr_database"] == "running"

    with pytest.raises(DrctlError, match="locked by alice"):
        harness.engine().run(killed, PARAMS)
    harness.clock.sleep(3600)
    with pytest.raises(DrctlError, match="looks stale"):
        harness.engine().run(killed, PARAMS)
    StackLock(harness.store(), STACK, harness.clock).break_lock("laptop lost power during the drill", "bob")

    resumed = RunParameters(reason=PARAMS.reason, operator="bob", mode=PARAMS.mode)
    outcome = harness.engine().run(killed, resumed)
    assert outcome.status == "succeeded" and promoted == [True]
    run = Journal(harness.store()).load()
    assert run.step("promote_dr_database").status is StepStatus.ALREADY_DONE
    assert [a["operator"] for a in run.attempts] == ["alice", "bob"]


def test_a_finished_run_repeated_is_a_no_op_that_says_so(harness: Harness) -> None:
    harness.engine().run(harness.runbook(), PARAMS)
    harness.done.clear()
    outcome = harness.engine().run(harness.runbook(), PARAMS)
    assert outcome.status == "already-completed"
    assert "already completed" in outcome.message and "nothing to do" in outcome.message
    assert harness.done == []


def test_an_unfinished_run_refuses_other_parameters_and_says_how_to_proceed(harness: Harness) -> None:
    harness.failures["promote_dr_database"] = 1
    with pytest.raises(RunFailedError):
        harness.engine().run(harness.runbook(), PARAMS)
    graceful = RunParameters(reason=PARAMS.reason, operator="alice", mode="graceful")
    with pytest.raises(DrctlError, match="mode 'emergency' -> 'graceful'") as refused:
        harness.engine().run(harness.runbook(), graceful)
    assert "same parameters" in (refused.value.hint or "") and "--abandon-unfinished" in (refused.value.hint or "")
    first_run = Journal(harness.store()).load().run_id

    harness.engine().run(harness.runbook(), graceful, abandon_unfinished=True)
    archived = json.loads((harness.store().root / f"journal/runs/{first_run}.json").read_text())
    assert archived["status"] == "abandoned"
    assert Journal(harness.store()).load().parameters.mode == "graceful"


def test_another_runbook_cannot_start_over_an_unfinished_one(harness: Harness) -> None:
    harness.failures["scale_dr_compute"] = 1
    with pytest.raises(RunFailedError):
        harness.engine().run(harness.runbook(), PARAMS)
    other = Runbook("failback-prepare", "x", (Step("snapshot_old_primary", harness.action("snapshot")),))
    with pytest.raises(DrctlError, match="must be finished or abandoned before failback-prepare"):
        harness.engine().run(other, PARAMS)


def test_the_lock_refuses_a_second_run(harness: Harness) -> None:
    lease = StackLock(harness.store(), STACK, harness.clock).acquire("carol", "failback-switch")
    with pytest.raises(DrctlError, match="locked by carol"):
        harness.engine().run(harness.runbook(), PARAMS)
    assert harness.done == [] and Journal(harness.store()).load() is None
    lease.release()


# --- checks, probes, timeouts -----------------------------------------------------------------


def _refuse(message: str) -> Callable[[RunContext], str]:
    def check(context: RunContext) -> str:
        raise CheckFailedError(message)

    return check


def test_a_preflight_refusal_changes_nothing_and_is_journaled(harness: Harness) -> None:
    lag = Check("replica_lag_under_rpo", lambda c: None if c.parameters.force else _refuse("lag 420 s > RPO 300 s")(c))
    runbook = Runbook("failover", "x", (Step("promote_dr_database", harness.action("promote")),), preflight=(lag,))
    with pytest.raises(RunFailedError, match=r"refused by its preflight checks.*lag 420 s") as refused:
        harness.engine().run(runbook, PARAMS)
    assert "--force" in (refused.value.hint or "")
    run = Journal(harness.store()).load()
    assert run.status is RunStatus.REFUSED and run.preflight[0].passed is False
    assert harness.done == [] and _statuses(harness.store()) == {"promote_dr_database": "pending"}

    # Nothing ran, so other parameters (here --force) start a new run rather than being refused.
    forced = RunParameters(reason="primary region gone, accepting the loss", operator="alice", force=True)
    assert harness.engine().run(runbook, forced).status == "succeeded"


def test_a_pre_check_refuses_the_step_before_its_action(harness: Harness) -> None:
    runbook = Runbook(
        "failover",
        "x",
        (Step("promote_dr_database", harness.action("promote"), pre_checks=(Check("dr_is_replica", _refuse("no")),)),),
    )
    with pytest.raises(RunFailedError, match="refused"):
        harness.engine().run(runbook, PARAMS)
    step = Journal(harness.store()).load().step("promote_dr_database")
    assert step.status is StepStatus.REFUSED and "dr_is_replica: no" in step.error
    assert harness.done == []


def test_a_post_check_fails_the_step_after_its_action(harness: Harness) -> None:
    writable = Check("dr_database_writable", _refuse("still a replica of acme-drp-use1-pg-g1"))
    runbook = Runbook(
        "failover", "x", (Step("promote_dr_database", harness.action("promote"), post_checks=(writable,)),)
    )
    with pytest.raises(RunFailedError):
        harness.engine().run(runbook, PARAMS)
    step = Journal(harness.store()).load().step("promote_dr_database")
    assert step.status is StepStatus.FAILED and "post-check failed: dr_database_writable" in step.error
    assert harness.done == ["promote"]
    assert [(c.kind, c.passed) for c in step.checks] == [("post", False)]


def test_the_probe_skips_a_done_action_but_still_verifies_it(harness: Harness) -> None:
    verified: list[str] = []
    runbook = Runbook(
        "failover",
        "x",
        (
            Step(
                "scale_dr_compute",
                harness.action("scale"),
                already_done=lambda context: True,
                post_checks=(Check("nodes_ready", lambda context: verified.append("yes") or "3 of 3 nodes ready"),),
            ),
        ),
    )
    harness.engine().run(runbook, PARAMS)
    step = Journal(harness.store()).load().step("scale_dr_compute")
    assert step.status is StepStatus.ALREADY_DONE and harness.done == [] and verified == ["yes"]
    assert [c.kind for c in step.checks] == ["probe", "post"]


def test_a_blocked_step_times_out_and_the_run_stops_journaled(harness: Harness) -> None:
    # The action notices the cancellation (as ctx.sleep does) and returns: the engine waited for that.
    blocked = Step("switch_dns", lambda context: context.cancelled.wait(10), timeout_seconds=0.2)
    started = time.monotonic()
    with pytest.raises(RunFailedError, match="timed-out"):
        RunbookEngine(STACK, harness.store(), output=harness.lines.append).run(
            Runbook("failover", "x", (blocked,)), PARAMS
        )
    assert time.monotonic() - started < 5
    step = Journal(harness.store()).load().step("switch_dns")
    assert step.status is StepStatus.TIMED_OUT and "no result after 0.2 s" in step.error


def test_waiting_past_the_deadline_on_the_injected_clock_times_out(harness: Harness) -> None:
    def wait_for_lag(context: RunContext) -> None:
        context.wait_until(lambda: False, what="replica lag is zero", interval_seconds=10)

    runbook = Runbook("failover", "x", (Step("wait_until_caught_up", wait_for_lag, timeout_seconds=60),))
    with pytest.raises(RunFailedError):
        harness.engine().run(runbook, PARAMS)
    step = Journal(harness.store()).load().step("wait_until_caught_up")
    assert step.status is StepStatus.TIMED_OUT and "replica lag is zero" in step.error
    assert step.duration_seconds == 60


def test_an_interrupt_inside_an_action_is_journaled_then_let_through(harness: Harness) -> None:
    def interrupted(context: RunContext) -> None:
        raise KeyboardInterrupt

    runbook = Runbook("failover", "x", (Step("promote_dr_database", interrupted),))
    with pytest.raises(KeyboardInterrupt):
        harness.engine().run(runbook, PARAMS)
    run = Journal(harness.store()).load()
    assert run.status is RunStatus.FAILED and "KeyboardInterrupt" in run.step("promote_dr_database").error
    assert StackLock(harness.store(), STACK).current() is None  # released on the way out


# --- dry-run and reports -------------------------------------------------------------------------


def test_dry_run_prints_the_plan_calls_no_action_and_writes_nothing(harness: Harness) -> None:
    read: list[str] = []
    runbook = harness.runbook(
        pre_checks=(Check("dr_is_replica", lambda c: "ok"),),
        preview=lambda context: read.append("preview") or "1 to update (aws:rds/instance:Instance database-dr-g1)",
    )
    runbook = Runbook(
        runbook.name,
        runbook.description,
        runbook.items,
        preflight=(Check("dr_healthy", lambda c: read.append("preflight") or "all green"),),
    )
    outcome = harness.engine().run(runbook, PARAMS, dry_run=True)
    assert outcome.status == "planned" and harness.done == []
    assert read == ["preflight", "preview"]
    assert not harness.root.exists() or not any(harness.root.rglob("*"))
    text = "\n".join(outcome.plan)
    assert "[ok] dr_healthy: all green" in text
    assert "in parallel (prepare_dr)" in text and "pre-check: dr_is_replica" in text
    assert "would change: 1 to update" in text
    assert text.index("check_dr_readiness") < text.index("scale_dr_compute") < text.index("promote_dr_database")


def test_reports_measure_rto_and_the_data_loss_window(harness: Harness) -> None:
    def promote(context: RunContext) -> None:
        context.record(DATA_LOSS_WINDOW, 4.0)
        context.record(TARGETS, ["urn:pulumi:prod::dr-platform::aws:rds/instance:Instance::database-dr-g1"])
        context.sleep(240)

    runbook = harness.runbook()
    items = (*runbook.items[:2], Step("promote_dr_database", promote), runbook.items[3])
    runbook = Runbook(runbook.name, runbook.description, items, rto_target_seconds=900, rpo_target_seconds=300)
    outcome = harness.engine(simulation=True).run(runbook, PARAMS)

    base = harness.store().root / "reports" / outcome.run.run_id
    report = json.loads(Path(f"{base}.json").read_text())
    assert report["simulation"] is True and report["who"] == "alice" and report["why"] == "quarterly drill"
    assert report["rto"] == {"measured_seconds": 330.0, "target_seconds": 900, "met": True}  # 60 + 30 + 240
    assert report["data_loss_window"] == {"measured_seconds": 4.0, "target_seconds": 300, "met": True}
    assert report["targets"] == ["urn:pulumi:prod::dr-platform::aws:rds/instance:Instance::database-dr-g1"]
    assert [s["name"] for s in report["steps"]] == STEP_NAMES
    assert all(s["started_at"].endswith("Z") and s["duration_seconds"] is not None for s in report["steps"])
    markdown = Path(f"{base}.md").read_text()
    assert "(SIMULATION)" in markdown and "330 s against a target of 900 s: met" in markdown
    assert "| promote_dr_database | succeeded |" in markdown


def test_a_failed_run_still_writes_its_report(harness: Harness) -> None:
    harness.failures["verify_services"] = 1
    with pytest.raises(RunFailedError) as failed:
        harness.engine().run(harness.runbook(), PARAMS)
    report = json.loads((harness.store().root / f"reports/{failed.value.run.run_id}.json").read_text())
    assert report["status"] == "failed" and report["rto"]["measured_seconds"] is None
    assert "verify_services broke" in report["error"]


def test_a_runbook_needs_unique_step_names() -> None:
    step = Step("scale_dr_compute", lambda c: None)
    with pytest.raises(ValueError, match="scale_dr_compute"):
        Runbook("x", "x", (step, Parallel("g", (step,))))


# --- an example runbook composed from the engine, the stack adapter and AWS actions ---------------


PRIMARY, DR = "us-east-1", "us-west-2"


@dataclass
class FakeAws:
    """What the boto3 side will provide: readings and idempotent actions."""

    replica_lag_seconds: float = 3.0
    dr_nodes_desired: int = 1
    cache_primary_region: str = PRIMARY
    notifications: list[str] = field(default_factory=list)


def failover_runbook(stack: StackAdapter, aws: FakeAws) -> Runbook:
    """Emergency failover to the DR region, in the shape the real `drctl failover` will have."""
    cfg = parse_config(stack.get_config())
    failed_region = cfg.primary_region

    def lag_under_rpo(context: RunContext) -> str:
        lag = aws.replica_lag_seconds
        if lag > cfg.rpo_seconds and not context.parameters.force:
            raise CheckFailedError(f"replica lag {lag:g} s exceeds the RPO of {cfg.rpo_seconds} s")
        return f"replica lag {lag:g} s"

    def steady(context: RunContext) -> str:
        state = parse_config(stack.get_config()).dr_state
        if state is not DrState.STEADY:
            raise CheckFailedError(f"the stack is {state.value}, failover starts from steady")
        return "steady"

    def scale_dr_compute(context: RunContext) -> Mapping[str, Any]:
        aws.dr_nodes_desired = cfg.node_group_full.desired
        return {"desired": aws.dr_nodes_desired}

    def fail_over_cache(context: RunContext) -> None:
        aws.cache_primary_region = DR

    def promote_dr_database(context: RunContext) -> Mapping[str, Any]:
        context.record(DATA_LOSS_WINDOW, aws.replica_lag_seconds)
        if any(operation.creates for operation in stack.pending_operations()):
            context.log(stack.resolve_pending_creates().describe())  # the stand-in's cloud never got them
        config = stack.get_config()
        if parse_config(config).dr_state is DrState.STEADY:
            config = stack.set_config(transition_config(config, DrState.FAILED_OVER))
        evaluation = cached_evaluation(config)
        targets = surviving_region_targets(evaluation, failed_region)
        refuse_failed_region_targets(evaluation, targets, failed_region)
        context.record(TARGETS, targets)
        return {"changes": stack.up(targets, on_output=context.log).summary.describe()}

    def stack_says_failed_over(context: RunContext) -> bool:
        return stack.outputs().get("activeRegion") == DR and not stack.pending_operations()

    def dr_is_active(context: RunContext) -> str:
        outputs = stack.outputs()
        if outputs.get("activeRegion") != DR or outputs.get("drState") != "failed-over":
            raise CheckFailedError(f"stack outputs still say {outputs.get('activeRegion')}/{outputs.get('drState')}")
        return f"activeRegion {DR}"

    def services_healthy(context: RunContext) -> str:
        if aws.dr_nodes_desired < cfg.node_group_full.desired or aws.cache_primary_region != DR:
            raise CheckFailedError("DR compute or cache not taken over")
        return "DR serving"

    return Runbook(
        name="failover",
        description=f"fail {STACK} over from {failed_region} to {DR}",
        preflight=(Check("replica_lag_under_rpo", lag_under_rpo), Check("stack_is_steady", steady)),
        items=(
            Parallel(
                "prepare_dr",
                (Step("scale_dr_compute", scale_dr_compute), Step("fail_over_global_datastore", fail_over_cache)),
            ),
            Step(
                "promote_dr_database",
                promote_dr_database,
                already_done=stack_says_failed_over,
                post_checks=(Check("stack_outputs_show_dr_active", dr_is_active),),
            ),
            Step("verify_services", lambda context: None, post_checks=(Check("dr_serving", services_healthy),)),
            Step("notify", lambda context: aws.notifications.append("failed over") or None),
        ),
        rto_target_seconds=cfg.rto_seconds,
        rpo_target_seconds=cfg.rpo_seconds,
    )


def test_example_failover_runbook_targets_only_the_surviving_region(harness: Harness) -> None:
    stack, aws = StandInStack(prod_config()), FakeAws()
    outcome = harness.engine(simulation=True).run(failover_runbook(stack, aws), PARAMS)
    assert outcome.status == "succeeded"
    assert stack.config_changes[0]["dr-platform:activeRegion"] == DR
    assert stack.config_changes[0]["dr-platform:drState"] == "failed-over"
    (update,) = stack.updates
    declared = cached_evaluation(stack.get_config()).by_urn()
    assert update.targets and update.targets[0] == stack.root_urn
    assert all(declared[urn].region in (DR, GLOBAL, None) for urn in update.targets[1:])
    changed_regions = {declared[step.urn].region for step in update.summary.changed}
    assert PRIMARY not in changed_regions and DR in changed_regions
    assert stack.outputs()["activeRegion"] == DR and aws.notifications == ["failed over"]
    report = json.loads((harness.store().root / f"reports/{outcome.run.run_id}.json").read_text())
    assert report["data_loss_window"]["measured_seconds"] == 3.0 and report["targets"] == list(update.targets)

    # Repeating the same command is a no-op; the stack is not touched again.
    assert harness.engine().run(failover_runbook(stack, aws), PARAMS).status == "already-completed"
    assert len(stack.updates) == 1


def test_example_failover_resumes_after_an_interrupted_stack_update(harness: Harness) -> None:
    stack, aws = StandInStack(prod_config()), FakeAws()
    stack.fail_up(1, "interrupt")
    with pytest.raises(RunFailedError, match="promote_dr_database"):
        harness.engine().run(failover_runbook(stack, aws), PARAMS)
    assert stack.pending and _statuses(harness.store())["scale_dr_compute"] == "succeeded"

    harness.engine().run(failover_runbook(stack, aws), PARAMS)
    assert [u.error is None for u in stack.updates] == [False, True]
    assert stack.preview([stack.root_urn]).changed == () and stack.pending == []


def test_example_failover_preflight_refuses_lag_above_the_rpo_unless_forced(harness: Harness) -> None:
    stack, aws = StandInStack(prod_config()), FakeAws(replica_lag_seconds=420)
    with pytest.raises(RunFailedError, match="replica lag 420 s exceeds the RPO of 300 s"):
        harness.engine().run(failover_runbook(stack, aws), PARAMS)
    assert stack.updates == [] and stack.config_changes == [] and aws.dr_nodes_desired == 1


# --- step timeouts stop the stack update; the lock's heartbeat; the gates before an update -----------------


HUNG_STEP_SECONDS = 60
"""A bound for update steps whose timeout is not under test: reached only by a hung update. An update evaluates
the program for a new config, several seconds on a loaded machine running the tests in parallel."""


def _dr_context(stack: StackAdapter, clock: Any) -> Any:
    from automation.runbooks.context import DrAws, DrContext

    return DrContext(stack, DrAws(None, clock), clock)  # type: ignore[arg-type]  # updates reach no AWS


def _update_step(ctx: Any, name: str, timeout: float) -> Step:
    return Step(
        name, lambda run: {"changes": ctx.update(run, None, message=name).summary.describe()}, timeout_seconds=timeout
    )


def test_a_timed_out_update_is_cancelled_and_nothing_else_runs_until_it_stopped(harness: Harness) -> None:
    stack = StandInStack(prod_config())
    ctx = _dr_context(stack, harness.clock)
    stack.slow_up(1, 30)  # the first update would hold the stack for 30 s
    switch = Runbook("switch", "x", (_update_step(ctx, "update_stack", 0.3),))
    started = time.monotonic()
    with pytest.raises(RunFailedError, match="timed-out"):
        harness.engine().run(switch, PARAMS)
    assert time.monotonic() - started < 10  # cancelled, not waited out
    assert not stack.update_running  # stopped before the engine returned
    assert [call.method for call in stack.calls].count("cancel") == 1

    rollback = Runbook("rollback", "x", (_update_step(ctx, "roll_back_stack", HUNG_STEP_SECONDS),))
    harness.engine().run(rollback, PARAMS, abandon_unfinished=True)
    assert stack.concurrent_stack_updates == 0
    assert stack.updates[-1].error is None


def test_work_that_does_not_stop_after_a_timeout_stops_the_run_and_nothing_else_runs(harness: Harness) -> None:
    release = threading.Event()

    def stuck(run: RunContext) -> None:
        run.on_timeout(lambda: None)  # a cancel that does not stop the work
        release.wait(10)

    runbook = Runbook(
        "switch",
        "x",
        (Step("update_stack", stuck, timeout_seconds=0.2), Step("roll_back", harness.action("roll_back"))),
    )
    try:
        with pytest.raises(StackStillBusyError, match="may still be running"):
            harness.engine(stop_wait_seconds=0.2).run(runbook, PARAMS)
    finally:
        release.set()
    assert "roll_back" not in harness.done
    run = Journal(harness.store()).load()
    assert run is not None and run.status is RunStatus.FAILED
    assert run.step("update_stack").status is StepStatus.TIMED_OUT
    assert "did not stop" in (run.step("update_stack").error or "")


def test_a_step_timeout_is_raised_to_the_provider_timeout_of_what_it_updates(harness: Harness) -> None:
    """catalogue: rds.provider-update-timeout"""
    from automation.runbooks.context import gate_preview, provider_update_timeout

    preview = ChangeSummary({"update": 1}, (ResourceStep("urn:db", "update", "aws:rds/instance:Instance"),))
    required = provider_update_timeout(gate_preview(preview))
    assert required is not None and required[0] == 80 * 60

    def long_update(run: RunContext) -> None:
        run.require_timeout(1.0, "an RDS update")
        time.sleep(0.5)  # longer than the step's own 0.2 s, shorter than what the update requires

    runbook = Runbook("switch", "x", (Step("update_stack", long_update, timeout_seconds=0.2),))
    harness.engine().run(runbook, PARAMS)
    assert any("step timeout raised to 1 s" in line for line in harness.lines)


def test_the_lock_is_renewed_while_a_long_step_runs(tmp_path: Path) -> None:
    store = local_store(STACK, root=tmp_path)
    seen: list[str] = []

    def long_step(run: RunContext) -> None:
        for _ in range(6):
            time.sleep(0.1)
            info = StackLock(store, STACK).current()
            assert info is not None
            seen.append(info.heartbeat_at)

    engine = RunbookEngine(STACK, store, output=lambda _line: None, heartbeat_seconds=0.05)
    engine.run(Runbook("drill", "x", (Step("long", long_step, timeout_seconds=5),)), PARAMS)
    assert len(set(seen)) >= 3  # renewed during the one step, not only between steps
    assert engine.lock.stale_after.total_seconds() == pytest.approx(0.2)  # four heartbeats


def test_a_run_whose_lock_was_broken_stops_before_its_next_step(tmp_path: Path) -> None:
    store = local_store(STACK, root=tmp_path)

    def broken_meanwhile(run: RunContext) -> None:
        StackLock(store, STACK).break_lock("looked dead", "bob")
        time.sleep(0.3)

    engine = RunbookEngine(STACK, store, output=lambda _line: None, heartbeat_seconds=0.05)
    runbook = Runbook("drill", "x", (Step("first", broken_meanwhile), Step("second", lambda run: None)))
    with pytest.raises(DrctlError, match="lost the lock"):
        engine.run(runbook, PARAMS)
    run = Journal(store).load()
    assert run is not None and run.step("second").status is StepStatus.PENDING


class _PreviewFailing(StandInStack):
    def preview(self, targets: Any = None, on_output: Any = None, *, exclude: Any = None) -> ChangeSummary:
        summary = super().preview(targets, on_output, exclude=exclude)
        error = Diagnostic("error", "dr-platform: storage-encrypted: RDS storage must be encrypted", "urn:db")
        return ChangeSummary(summary.counts, summary.steps, (error,))


def _update_once(ctx: Any, harness: Harness) -> None:
    harness.engine().run(Runbook("update", "x", (_update_step(ctx, "update_stack", HUNG_STEP_SECONDS),)), PARAMS)


def test_an_update_whose_preview_fails_the_policy_pack_is_refused_before_it_starts(harness: Harness) -> None:
    stack = _PreviewFailing(prod_config())
    with pytest.raises(RunFailedError, match="storage must be encrypted"):
        _update_once(_dr_context(stack, harness.clock), harness)
    assert stack.updates == []


class _PreviewReplacingBucket(StandInStack):
    def preview(self, targets: Any = None, on_output: Any = None, *, exclude: Any = None) -> ChangeSummary:
        summary = super().preview(targets, on_output, exclude=exclude)
        replace = ResourceStep("urn:pulumi:prod::dr-platform::aws:s3/bucket:Bucket::data-dr", "replace", "")
        return ChangeSummary(summary.counts, (*summary.steps, replace))


def test_an_update_that_would_replace_a_bucket_is_refused_by_the_guard(harness: Harness) -> None:
    stack = _PreviewReplacingBucket(prod_config())
    with pytest.raises(RunFailedError, match=r"replace urn:.*data-dr: the stateful-resource guard refuses"):
        _update_once(_dr_context(stack, harness.clock), harness)
    assert stack.updates == []


def test_an_update_that_would_replace_a_protected_database_is_refused_at_the_preview(harness: Harness) -> None:
    stack = StandInStack(prod_config())
    stack.set_config({"dbName": "renamed"})  # a new database name replaces the instances
    with pytest.raises(RunFailedError, match="protected and the update would replace"):
        _update_once(_dr_context(stack, harness.clock), harness)
    assert stack.updates == []


def test_pending_creates_the_update_reaches_are_refused_with_the_clis_own_commands(harness: Harness) -> None:
    """catalogue: pulumi-cli.pending-operations-warn-only, pulumi-cli.import-pending-creates-drops-the-record"""
    stack = StandInStack(prod_config())
    ctx = _dr_context(stack, harness.clock)
    topic = next(urn for urn in stack.state if "sns/topic:Topic" in urn)
    stack.pending = [PendingOperation(topic, "creating", "aws:sns/topic:Topic")]
    with pytest.raises(RunFailedError, match="pending create") as refused:
        _update_once(ctx, harness)
    error = refused.value.run.step("update_stack").error or ""
    assert f"drctl state clear-pending --stack {STACK}" in error and "--clear-pending-creates --target" in error
    assert "pulumi import --stack" in error and "never `pulumi refresh --import-pending-creates`" in error
    assert stack.updates == [] and stack.pending


def test_pending_updates_are_left_to_the_engine_and_creates_out_of_scope_to_a_follow_up(harness: Harness) -> None:
    stack = StandInStack(prod_config())
    ctx = _dr_context(stack, harness.clock)
    urns = list(stack.state)
    database, elsewhere = urns[-1], urns[-2]
    stack.pending = [PendingOperation(database, "updating"), PendingOperation(elsewhere, "creating")]

    def update(run: RunContext) -> None:
        ctx.update(run, [database], message="targeted")

    outcome = harness.engine().run(
        Runbook("update", "x", (Step("update_stack", update, timeout_seconds=HUNG_STEP_SECONDS),)), PARAMS
    )
    assert stack.updates[-1].error is None
    assert "resolve_pending_creates" not in [call.method for call in stack.calls]  # no state surgery by drctl
    assert stack.pending == [PendingOperation(elsewhere, "creating")]  # the engine dropped the pending update
    (note,) = outcome.run.measurements["follow_ups"]
    assert elsewhere in note and "drctl state clear-pending" in note


def test_the_guarded_preview_has_the_updates_targets_and_exclusions(harness: Harness) -> None:
    stack = StandInStack(prod_config())
    ctx = _dr_context(stack, harness.clock)
    left_out = list(stack.state)[:2]

    def update(run: RunContext) -> None:
        ctx.update(run, None, exclude=left_out, message="switch")

    harness.engine().run(
        Runbook("update", "x", (Step("update_stack", update, timeout_seconds=HUNG_STEP_SECONDS),)), PARAMS
    )
    (preview,) = [call for call in stack.calls if call.method == "preview"]
    (up,) = [call for call in stack.calls if call.method == "up"]
    assert preview.arguments["exclude"] == up.arguments["exclude"] == tuple(left_out)
    assert preview.arguments["targets"] == up.arguments["targets"] is None


def test_a_refresh_the_engine_would_do_in_a_region_that_is_down_is_refused(harness: Harness) -> None:
    """catalogue: pulumi-cli.refresh-before-update-ignores-refresh-flag: --refresh=false does not stop it."""
    stack = StandInStack(prod_config())
    ctx = _dr_context(stack, harness.clock)
    declared = cached_evaluation(stack.get_config()).by_urn()
    in_primary = next(urn for urn, resource in declared.items() if resource.region == PRIMARY and resource.custom)
    in_dr = next(urn for urn, resource in declared.items() if resource.region == DR and resource.custom)
    stack.refresh_before_update = {in_primary, in_dr}

    with pytest.raises(RunFailedError, match="would refresh") as refused:
        _update_once(ctx, harness)  # PARAMS: an emergency failover, whose primary region is down
    assert in_primary in (refused.value.run.step("update_stack").error or "") and stack.updates == []

    def dr_only(run: RunContext) -> None:
        ctx.update(run, [in_dr], message="dr only")

    graceful = RunParameters(reason="drill", operator="alice", mode="graceful")
    outcome = harness.engine().run(
        Runbook("update2", "x", (Step("update_stack", dr_only, timeout_seconds=HUNG_STEP_SECONDS),)),
        graceful,
        abandon_unfinished=True,
    )
    assert stack.refreshed == [in_dr]
    assert any(in_dr in warning and "--refresh=false" in warning for warning in outcome.run.measurements["warnings"])


def test_missing_stack_outputs_never_send_the_operator_to_a_full_update() -> None:
    """During an outage a full `pulumi up` reaches the failed region and skips drctl's gates."""
    from automation.runbooks.context import output

    with pytest.raises(DrctlError, match=r"no entryPoints\.us-west-2") as missing:
        output({}, "entryPoints", DR)
    hint = missing.value.hint or ""
    assert "never run a full `pulumi up`" in hint and "run a full `pulumi up` first" not in hint


def test_a_dry_run_preview_is_bounded_by_its_steps_timeout(harness: Harness) -> None:
    def hangs(context: RunContext) -> str:
        context.cancelled.wait(10)
        return "never"

    runbook = Runbook("switch", "x", (Step("update_stack", lambda run: None, timeout_seconds=0.2, preview=hangs),))
    started = time.monotonic()
    outcome = harness.engine().run(runbook, PARAMS, dry_run=True)
    assert time.monotonic() - started < 3
    assert any("preview failed" in line and "no result after 0.2 s" in line for line in outcome.plan)


def test_a_resume_from_another_checkout_or_with_an_override_is_the_same_run(harness: Harness) -> None:
    harness.failures["promote_dr_database"] = 1
    first = RunParameters("drill", "alice", "emergency", attempt={"checkout": "abc"})
    with pytest.raises(RunFailedError):
        harness.engine().run(harness.runbook(), first)
    again = RunParameters(
        "drill", "bob", "emergency", attempt={"checkout": "def", "checkout_override": "not main: INC-1"}
    )
    outcome = harness.engine().run(harness.runbook(), again)
    assert outcome.status == "succeeded" and "resumed" in outcome.message
    assert [attempt.get("checkout") for attempt in outcome.run.attempts] == ["abc", "def"]
    assert outcome.run.attempts[-1]["checkout_override"] == "not main: INC-1"
    assert "checkout" not in outcome.run.parameters.to_dict() and outcome.run.parameters.options == {}


def test_the_timeout_watchdog_runs_at_the_sandbox_clock_scale(harness: Harness) -> None:
    """A 100 s step timeout at scale 0.002 fires after 0.2 real seconds (the sandbox's modelled time)."""
    blocked = Step("switch_dns", lambda context: context.cancelled.wait(10), timeout_seconds=100)
    started = time.monotonic()
    with pytest.raises(RunFailedError, match="timed-out"):
        harness.engine(timeout_scale=0.002).run(Runbook("failover", "x", (blocked,)), PARAMS)
    assert time.monotonic() - started < 3
