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
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from automation.aws import readiness
from automation.drill.report import build_report
from automation.drill.scenarios import (
    CRASH_RESUME,
    DEFAULT_CRASH_STEP,
    REPLICA_LAG,
    SWITCH_TIMEOUT,
    DrillResult,
    DrillScenario,
)
from automation.drill.world import DrillEvent, DrillWorld
from automation.errors import DrctlError
from automation.journal import RunParameters, RunRecord, RunStatus, iso, local_store
from automation.runbook import RunbookEngine, RunFailedError
from automation.runbooks.context import DrContext, RunbookSettings
from automation.runbooks.failback import prepare_runbook, run_failback_switch
from automation.runbooks.failover import failover_graph, failover_runbook, fence_former_region_runbook
from automation.runbooks.status import read_status
from automation.sandbox import MotoSandboxServer, Sandbox, SimulatedCrash, load_balancer_dimension
from automation.timings import REPLICATION, Op
from components.config import PlatformConfig
from components.naming import db_identifier

DRILL_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
"""Modelled time starts here in every drill: timestamps repeat from run to run (run ids carry a random part)."""
DRILL_SCALE = 0.0001
"""Real seconds slept per modelled second: the 2-hour replica builds of provisioning and failback take 0.7 s each."""
DRILL_OPERATOR = "drctl-drill"


@dataclass(frozen=True)
class Traffic:
    """The application's writes: `per_batch` rows, objects and cache keys every `interval_seconds`."""

    per_batch: int = 2
    interval_seconds: float = 10
    steady_seconds: float = 300
    failed_over_seconds: float = 120
    after_failback_seconds: float = 60
    returned_seconds: float = 120
    """primary-returns: how long users keep coming after the former region answers again, before drctl fences it."""


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
    events: list[DrillEvent] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    run_anchors: dict[str, int] = field(default_factory=dict)
    """Run id -> the event that started it, so the timeline lists a run's steps after it at equal times."""
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    served: list[tuple[datetime, str, dict[str, int], dict[str, int]]] = field(default_factory=list)
    """(when, phase, requests per region, rows acknowledged per region) of each batch of users' requests."""
    outage_started: datetime | None = None
    """When the primary region stopped answering (an outage scenario): the RTO counts from there."""
    failover_started: datetime | None = None
    former_writer: str | None = None
    returned_at: datetime | None = None
    fenced_at: datetime | None = None
    switch_started: datetime | None = None

    # --- plumbing ---------------------------------------------------------------------

    def event(self, phase: str, text: str) -> int:
        self.events.append(DrillEvent(self.sandbox.clock.now(), phase, text))
        self.output(f"[{phase}] {text}")
        return len(self.events) - 1

    def add_run(self, run: RunRecord, anchor: int) -> None:
        if run.run_id not in self.run_anchors:
            self.runs.append(run)
            self.run_anchors[run.run_id] = anchor

    def world(self) -> DrillWorld:
        """The sandbox's side of the seam a live drill also runs through (automation.drill.world)."""
        sandbox = self.sandbox
        return DrillWorld(
            stack=sandbox.stack,
            clients=sandbox.clients,
            clock=sandbox.clock,
            store=local_store(sandbox.stack.fully_qualified_name, root=self.journal_root),
            simulation=True,
            operator=DRILL_OPERATOR,
            step_hook=sandbox.crash_point,
            error_metrics=lambda region: readiness.load_balancer_metrics(load_balancer_dimension(sandbox.cfg, region)),
            record_traffic_fence=lambda run, raised: sandbox.record_traffic_fence(raised, run.run_id),
            resolvers=(sandbox.authoritative_answer, sandbox.zone_name_servers),
        )

    def context(self, settings: RunbookSettings | None = None) -> DrContext:
        """What `drctl failover`/`failback` build from a real stack, built from the sandbox instead."""
        return self.world().context(settings)

    def engine(self) -> RunbookEngine:
        """A fresh runner (as a new drctl process would be) on the drill's journal."""
        return self.world().engine(lambda line: self.output(f"    {line}"))

    def parameters(self, mode: str | None = None) -> RunParameters:
        return RunParameters(reason=self.reason, operator=DRILL_OPERATOR, mode=mode, force=self.forced)

    def serve_for(self, seconds: float, phase: str) -> None:
        """Users send a batch every interval for `seconds`, each request where its resolver's DNS answer says."""
        clock, traffic = self.sandbox.clock, self.traffic
        batches = int(seconds // traffic.interval_seconds)
        requests: Counter[str] = Counter()
        written: Counter[str] = Counter()
        for index in range(batches + 1):
            if index:
                clock.sleep(traffic.interval_seconds)
            served = self.sandbox.serve(traffic.per_batch, prefix=phase)
            self.served.append((clock.now(), phase, dict(served.requests), dict(served.written)))
            requests.update(served.requests)
            written.update(served.written)
        where = ", ".join(f"{region} {count}" for region, count in sorted(requests.items())) or "none"
        rows = ", ".join(f"{region} {count}" for region, count in sorted(written.items())) or "none"
        self.event(phase, f"users sent {sum(requests.values())} requests ({where}); rows acknowledged: {rows}")

    def checkpoint(self, name: str, region: str) -> None:
        survivals = self.sandbox.data.survivors(region)
        self.checkpoints[name] = {"region": region, "at": iso(self.sandbox.clock.now()), "kinds": survivals}
        lost = ", ".join(f"{s.kind} {len(s.lost)}" for s in survivals)
        self.event(name, f"data check in {region}: lost {lost}")

    # --- phases -------------------------------------------------------------------------

    def fail_over(self) -> tuple[DrillResult | None, dict[str, Any]]:
        """Faults, then the failover runbook (resumed once if the runner crashes); None when it succeeded."""
        sandbox, cfg = self.sandbox, self.sandbox.cfg
        mode = self.scenario.mode
        for fault in self.scenario.before_failover:
            step = self.crash_step if fault == CRASH_RESUME else None
            self.event("fault", sandbox.inject(fault, step=step))
        if self.scenario.primary_region_fails:
            self.outage_started = sandbox.clock.now()
        if self.scenario.fault_lead_seconds:
            self.serve_for(self.scenario.fault_lead_seconds, "lead")
        if self.scenario.primary_region_fails:
            sandbox.clock.charge(Op.HEALTH_CHECK_DETECTION)
            self.event("detect", f"Route53 health checks see {cfg.primary_region} failing")
        if self.scenario.start_delay_seconds:
            sandbox.clock.sleep(self.scenario.start_delay_seconds)
            self.event("detect", f"the on-call starts drctl {self.scenario.start_delay_seconds:g} s after detection")
        self.failover_started = sandbox.clock.now()
        self.former_writer = db_identifier(cfg, "primary", cfg.regions["primary"].db_generation)
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
                sandbox.clock.charge(Op.RUNNER_RESTART)
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

    def primary_returns(self) -> DrillResult | None:
        """The failed region answers again while failed over: users keep coming, drctl sees and fences it."""
        sandbox, cfg = self.sandbox, self.sandbox.cfg
        self.event("repair", sandbox.restore_region(cfg.primary_region))
        self.returned_at = sandbox.clock.now()
        self.serve_for(self.traffic.returned_seconds, "primary-back")
        rows = {reading.check: reading for reading in read_status(self.context()).readings}
        fence_row = rows.get("former-writer-fence")
        self.event("status", f"drctl status: {fence_row.status.value}: {fence_row.detail}" if fence_row else "-")
        anchor = self.event("fence", "drctl fence-former-region")
        try:
            fenced = self.engine().run(fence_former_region_runbook(self.context()), self.parameters())
        except (RunFailedError, DrctlError) as failure:
            if isinstance(failure, RunFailedError):
                self.add_run(failure.run, anchor)
            self.event("fence", f"failed: {failure}")
            return DrillResult.FAILED
        self.add_run(fenced.run, anchor)
        self.fenced_at = sandbox.clock.now()
        self.event("fence", _ended(fenced.run))
        return None

    def fail_back(self) -> DrillResult:
        sandbox, cfg = self.sandbox, self.sandbox.cfg
        if self.scenario.primary_returns_while_failed_over:
            self.serve_for(self.traffic.failed_over_seconds, "failed-over")
            stopped = self.primary_returns()
            if stopped is not None:
                return stopped
        else:
            self.repair()
            self.serve_for(self.traffic.failed_over_seconds, "failed-over")
        anchor = self.event("failback", "drctl failback prepare")
        try:
            prepared = self.engine().run(prepare_runbook(self.context()), self.parameters())
        except (RunFailedError, DrctlError) as failure:
            if isinstance(failure, RunFailedError):
                self.add_run(failure.run, anchor)
            self.event("failback", f"failed: {failure}")
            return DrillResult.FAILED
        self.add_run(prepared.run, anchor)
        self.event("failback", _ended(prepared.run))
        for fault in self.scenario.before_switch:
            self.event("fault", sandbox.inject(fault))
        # switch-timeout: an update must not outlive its step; the held one runs far longer than this bound.
        settings = (
            RunbookSettings(promotion_timeout_seconds=600) if SWITCH_TIMEOUT in self.scenario.before_switch else None
        )
        self.switch_started = sandbox.clock.now()
        anchor = self.event("failback", "drctl failback switch")
        try:
            switched = run_failback_switch(self.engine(), self.context(settings), self.parameters())
        except (RunFailedError, DrctlError) as failure:
            if isinstance(failure, RunFailedError):
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

    def split_brain(self) -> dict[str, Any] | None:
        """Requests the former region got, and writes its writer acknowledged, between the failover and the switch.

        Only the failback switch may send users back: anything before it reached a
        region the platform had left.
        """
        if not self.scenario.primary_region_fails or self.failover_started is None or self.former_writer is None:
            return None
        primary = self.sandbox.cfg.primary_region
        until = self.switch_started or self.sandbox.clock.now()
        requests = sum(
            counts.get(primary, 0) for at, _, counts, _ in self.served if self.failover_started <= at <= until
        )
        writes = [
            w
            for w in self.sandbox.data.database.writes_of(self.former_writer, self.failover_started)
            if w.written_at <= until
        ]
        unfenced = (self.fenced_at - self.returned_at).total_seconds() if self.fenced_at and self.returned_at else None
        return {
            "requests_to_former_region": requests,
            "writes_accepted_by_former_writer": len(writes),
            "former_writer": self.former_writer,
            "former_region_returned_at": iso(self.returned_at) if self.returned_at else None,
            "former_writer_fenced_at": iso(self.fenced_at) if self.fenced_at else None,
            "unfenced_seconds": unfenced,
        }


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
    """Run one scenario in a fresh sandbox and return its report (see docs/drills.md for the fields).

    `report_dir`: where the run's journal is kept (`drill-<scenario>-<drill id>-journal/`); none: nowhere.
    """
    started = datetime.now(UTC)
    drill_id = f"drill-{scenario.name}-{started.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
    with (
        _journal_directory(report_dir, drill_id) as journal_root,
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
        check_crash_step(scenario, crash_step, cfg)
        sandbox.provision()
        drill.event("provision", f"steady state applied to moto ({cfg.primary_region} active, {cfg.dr_region} standby)")
        drill.serve_for(drill.traffic.steady_seconds, "steady")
        if scenario.idle_before_failover_seconds:
            sandbox.clock.sleep(scenario.idle_before_failover_seconds)
            drill.event("idle", f"no writes for {scenario.idle_before_failover_seconds:g} s")
        result, failover = drill.fail_over()
        if result is None:
            drill.checkpoint("after-failover", cfg.dr_region)
            result = drill.fail_back()
        active = sandbox.stack.current_outputs()["activeRegion"]
        if result is not DrillResult.FAILED:
            drill.serve_for(drill.traffic.after_failback_seconds, "after")
        drill.checkpoint("final", active)
        split = drill.split_brain()
        if split and (split["requests_to_former_region"] or split["writes_accepted_by_former_writer"]):
            drill.event("split-brain", f"the former region got {split['requests_to_former_region']} requests")
            result = DrillResult.FAILED if result is DrillResult.SUCCEEDED else result
        wall_clock = {"started_at": iso(started), "finished_at": iso(datetime.now(UTC))}
        return build_report(drill, result, {**failover, "split_brain": split}, drill_id=drill_id, wall_clock=wall_clock)


@contextmanager
def _journal_directory(report_dir: Path | None, drill_id: str) -> Iterator[Path]:
    """A fresh journal per drill, copied next to the reports (`<drill id>-journal/`) when they are kept.

    The temporary directory goes whatever happens, an interrupt included (the command turns SIGTERM into one).
    """
    with tempfile.TemporaryDirectory(prefix="drctl-drill-") as root:
        try:
            yield Path(root)
        finally:
            if report_dir is not None:
                shutil.copytree(root, Path(report_dir) / f"{drill_id}-journal")


def check_crash_step(scenario: DrillScenario, crash_step: str, cfg: PlatformConfig) -> None:
    """A crash step the failover does not have would never crash: refuse it before anything starts."""
    if CRASH_RESUME not in scenario.before_failover:
        return
    steps = [node.name for node in failover_graph(cfg, scenario.mode).nodes]
    if crash_step not in steps:
        raise DrctlError(
            f"--crash-at {crash_step}: the {scenario.mode.value} failover has no such step",
            hint="one of: " + ", ".join(steps),
        )


def _ended(run: RunRecord) -> str:
    """How a run ended, without its run id (random): the timeline must repeat from drill to drill."""
    resumed = f", resumed {len(run.attempts) - 1} time(s)" if len(run.attempts) > 1 else ""
    return f"{run.runbook} {run.status.value}{resumed}"
