"""One sandbox drill: steady state, traffic, a fault, the production runbooks, what survived, a report.

The runbooks are the production ones (`automation.runbooks`), built by the
same `DrContext` factory a CLI command uses, with the sandbox's stack,
clients and latency clock in place of Pulumi, boto3-on-AWS and the wall
clock. The drill only drives them: it injects the faults, plays the
application's writes, repairs the failed region before the failback, and
counts what survived in the data plane.

Every figure is modelled time on a clock that starts at `DRILL_EPOCH`, so the
same scenario gives the same numbers on every machine.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from automation.aws import readiness
from automation.drill.report import build_report
from automation.drill.scenarios import CRASH_RESUME, DEFAULT_CRASH_STEP, REPLICA_LAG, DrillResult, DrillScenario
from automation.errors import DrctlError
from automation.journal import RunParameters, RunRecord, RunStatus, iso, local_store
from automation.runbook import RunbookEngine, RunFailedError
from automation.runbooks.context import DrAws, DrContext, RunbookSettings
from automation.runbooks.failback import prepare_runbook, run_failback_switch
from automation.runbooks.failover import failover_runbook
from automation.sandbox import MotoSandboxServer, Sandbox, SimulatedCrash, load_balancer_dimension
from automation.timings import REPLICATION, Op

DRILL_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
"""Modelled time starts here in every drill: timestamps repeat from run to run (run ids carry a random part)."""
DRILL_SCALE = 0.0001
"""Real seconds slept per modelled second: the 2-hour replica builds of provisioning and failback take 0.7 s each."""
DRILL_OPERATOR = "drctl-drill"
RUNNER_RESTART_SECONDS = 60
"""Estimate: on-call sees the runner die and reruns the same command (crash-resume)."""


@dataclass(frozen=True)
class Traffic:
    """The application's writes: `per_batch` rows, objects and cache keys every `interval_seconds`."""

    per_batch: int = 2
    interval_seconds: float = 10
    steady_seconds: float = 300
    failed_over_seconds: float = 120
    after_failback_seconds: float = 60


@dataclass
class _Event:
    at: datetime
    phase: str
    text: str


@dataclass
class Drill:
    """The state of one drill while it runs."""

    sandbox: Sandbox
    scenario: DrillScenario
    forced: bool
    reason: str
    crash_step: str
    traffic: Traffic
    journal_root: Path
    output: Callable[[str], None]
    events: list[_Event] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    run_anchors: dict[str, int] = field(default_factory=dict)
    """Run id -> the event that started it, so the timeline lists a run's steps after it at equal times."""
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)

    # --- plumbing ---------------------------------------------------------------------

    def event(self, phase: str, text: str) -> int:
        self.events.append(_Event(self.sandbox.clock.now(), phase, text))
        self.output(f"[{phase}] {text}")
        return len(self.events) - 1

    def add_run(self, run: RunRecord, anchor: int) -> None:
        if run.run_id not in self.run_anchors:
            self.runs.append(run)
            self.run_anchors[run.run_id] = anchor

    def context(self) -> DrContext:
        """What `drctl failover`/`failback` build from a real stack, built from the sandbox instead."""
        sandbox = self.sandbox
        settings = RunbookSettings()
        return DrContext(
            stack=sandbox.stack,
            aws=DrAws(sandbox.clients, sandbox.clock, settings),
            clock=sandbox.clock,
            settings=settings,
            step_hook=sandbox.crash_point,
            error_metrics=lambda region: readiness.load_balancer_metrics(load_balancer_dimension(sandbox.cfg, region)),
        )

    def engine(self) -> RunbookEngine:
        """A fresh runner (as a new drctl process would be) on the drill's journal."""
        stack = self.sandbox.stack.fully_qualified_name
        return RunbookEngine(
            stack,
            local_store(stack, root=self.journal_root),
            clock=self.sandbox.clock,
            output=lambda line: self.output(f"    {line}"),
            simulation=True,
        )

    def parameters(self, mode: str | None = None) -> RunParameters:
        return RunParameters(reason=self.reason, operator=DRILL_OPERATOR, mode=mode, force=self.forced)

    def write_for(self, region: str, seconds: float, phase: str) -> None:
        """The application in `region` writes a batch every interval for `seconds`, the last one at the end."""
        clock, traffic = self.sandbox.clock, self.traffic
        batches = int(seconds // traffic.interval_seconds)
        for index in range(batches + 1):
            if index:
                clock.sleep(traffic.interval_seconds)
            self.sandbox.data.write_batch(region, traffic.per_batch, prefix=phase)
        self.event(phase, f"application wrote {(batches + 1) * traffic.per_batch} rows, objects and keys in {region}")

    def checkpoint(self, name: str, region: str) -> None:
        survivals = self.sandbox.data.survivors(region)
        self.checkpoints[name] = {"region": region, "at": iso(self.sandbox.clock.now()), "kinds": survivals}
        lost = ", ".join(f"{s.kind} {len(s.lost)}" for s in survivals)
        self.event(name, f"data check in {region}: lost {lost}")

    # --- phases -------------------------------------------------------------------------

    def check_crash_step(self) -> None:
        """A crash step the failover does not have would never crash: refuse it before provisioning."""
        if CRASH_RESUME not in self.scenario.before_failover:
            return
        mode = self.scenario.mode
        steps = [step.name for step, _ in failover_runbook(self.context(), mode).steps()]
        if self.crash_step not in steps:
            raise DrctlError(
                f"--crash-at {self.crash_step}: the {mode.value} failover has no such step",
                hint="one of: " + ", ".join(steps),
            )

    def fail_over(self) -> tuple[DrillResult | None, dict[str, Any]]:
        """Faults, then the failover runbook (resumed once if the runner crashes); None when it succeeded."""
        sandbox, cfg = self.sandbox, self.sandbox.cfg
        mode = self.scenario.mode
        for fault in self.scenario.before_failover:
            step = self.crash_step if fault == CRASH_RESUME else None
            self.event("fault", sandbox.inject(fault, step=step))
        if self.scenario.primary_region_fails:
            sandbox.clock.charge(Op.HEALTH_CHECK_DETECTION)
            self.event("detect", f"Route53 health checks see {cfg.primary_region} failing; on-call starts drctl")
        mark, first_call = sandbox.clock.mark(), len(sandbox.simulated.calls)
        anchor = self.event("failover", f"drctl failover --mode {mode.value}" + (" --force" if self.forced else ""))
        result: DrillResult | None = None
        while True:
            try:
                outcome = self.engine().run(failover_runbook(self.context(), mode), self.parameters(mode.value))
                self.add_run(outcome.run, anchor)
                self.event("failover", _ended(outcome.run))
                break
            except SimulatedCrash as crash:
                self.event("crash", f"{crash}; the journal keeps the run")
                sandbox.clock.sleep(RUNNER_RESTART_SECONDS)
                self.event("crash", "a new runner reruns the same command: it resumes from the journal")
            except RunFailedError as failure:
                self.add_run(failure.run, anchor)
                refused = failure.run.status is RunStatus.REFUSED
                result = DrillResult.REFUSED if refused else DrillResult.FAILED
                self.event("failover", f"{result.value}: {failure}")
                break
        window = sandbox.clock.summary(since=mark)
        calls = sandbox.simulated.calls[first_call:]
        isolation = {
            "failed_region": cfg.primary_region if self.scenario.primary_region_fails else None,
            "calls_to_failed_region": sum(1 for call in calls if call.region == cfg.primary_region)
            if self.scenario.primary_region_fails
            else None,
            "calls": len(calls),
            "calls_by_operation": dict(sorted(Counter(f"{c.service}:{c.operation}" for c in calls).items())),
        }
        return result, {"latency": window, "isolation": isolation, "loss": sandbox.data.data_loss_window()}

    def repair(self) -> None:
        """Undo the failover's faults before the failback, as the teams fixing them would."""
        sandbox = self.sandbox
        if self.scenario.primary_region_fails:
            self.event("repair", sandbox.restore_region(sandbox.cfg.primary_region))
        if REPLICA_LAG in self.scenario.before_failover:
            typical = REPLICATION["rds-cross-region-replica"].typical_seconds
            self.event("repair", f"replication healthy again: {sandbox.set_replica_lag(typical)}")

    def fail_back(self) -> DrillResult:
        sandbox, cfg = self.sandbox, self.sandbox.cfg
        self.repair()
        self.write_for(cfg.dr_region, self.traffic.failed_over_seconds, "failed-over")
        anchor = self.event("failback", "drctl failback prepare")
        try:
            prepared = self.engine().run(prepare_runbook(self.context()), self.parameters())
        except RunFailedError as failure:
            self.add_run(failure.run, anchor)
            self.event("failback", f"failed: {failure}")
            return DrillResult.FAILED
        self.add_run(prepared.run, anchor)
        self.event("failback", _ended(prepared.run))
        for fault in self.scenario.before_switch:
            self.event("fault", sandbox.inject(fault))
        anchor = self.event("failback", "drctl failback switch")
        try:
            switched = run_failback_switch(self.engine(), self.context(), self.parameters())
        except RunFailedError as failure:
            self.add_run(failure.run, anchor)
            self.event("failback", f"failed: {failure}")
            return DrillResult.FAILED
        for run in (switched.switch_run, switched.outcome.run):
            if run is not None:
                self.add_run(run, anchor)
        if switched.result == "rolled-back":
            self.event("failback", f"rolled back to {cfg.dr_region}: {switched.cause}")
            return DrillResult.ROLLED_BACK
        self.event("failback", _ended(switched.outcome.run))
        return DrillResult.SUCCEEDED


def run_drill(
    scenario: DrillScenario,
    *,
    server: MotoSandboxServer | None = None,
    force: bool = False,
    reason: str | None = None,
    crash_step: str = DEFAULT_CRASH_STEP,
    traffic: Traffic | None = None,
    scale: float = DRILL_SCALE,
    report_dir: Path | None = None,
    output: Callable[[str], None] = lambda line: None,
    config: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run one scenario in a fresh sandbox and return its report (see docs/drills.md for the fields)."""
    with (
        _journal_directory(report_dir, scenario.name) as journal_root,
        Sandbox.open(config, server=server, scale=scale, start=DRILL_EPOCH) as sandbox,
    ):
        drill = Drill(
            sandbox,
            scenario,
            forced=force,
            reason=reason or f"sandbox drill: {scenario.name}",
            crash_step=crash_step,
            traffic=traffic or Traffic(),
            journal_root=journal_root,
            output=output,
        )
        cfg = sandbox.cfg
        drill.check_crash_step()
        sandbox.provision()
        drill.event("provision", f"steady state applied to moto ({cfg.primary_region} active, {cfg.dr_region} standby)")
        drill.write_for(cfg.primary_region, drill.traffic.steady_seconds, "steady")
        result, failover = drill.fail_over()
        if result is None:
            drill.checkpoint("after-failover", cfg.dr_region)
            result = drill.fail_back()
        active = sandbox.stack.outputs()["activeRegion"]
        if result is not DrillResult.FAILED:
            drill.write_for(active, drill.traffic.after_failback_seconds, "after")
        drill.checkpoint("final", active)
        return build_report(drill, result, failover)


@contextmanager
def _journal_directory(report_dir: Path | None, scenario: str) -> Iterator[Path]:
    """A fresh journal per drill, copied next to the reports (`drill-<scenario>-journal/`) when they are kept."""
    with tempfile.TemporaryDirectory(prefix="drctl-drill-") as root:
        try:
            yield Path(root)
        finally:
            if report_dir is not None:
                kept = Path(report_dir) / f"drill-{scenario}-journal"
                shutil.rmtree(kept, ignore_errors=True)
                shutil.copytree(root, kept)


def _ended(run: RunRecord) -> str:
    """How a run ended, without its run id (random): the timeline must repeat from drill to drill."""
    resumed = f", resumed {len(run.attempts) - 1} time(s)" if len(run.attempts) > 1 else ""
    return f"{run.runbook} {run.status.value}{resumed}"
