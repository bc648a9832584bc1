"""`drctl drill --live`: a rehearsal on a real stack with the production runbooks, measured by the wall clock.

Scope `full` (quarterly): canaries written in the primary region, a graceful
failover (`automation.runbooks.failover`), the canaries counted in the DR
region, an optional hold in DR, `failback prepare`, canaries written in DR,
`failback switch`, the canaries counted in the primary region. With the
stack's `faultInjection` on and `--inject-fault`, the primary region's
cross-Region connectivity experiment (AWS FIS) runs from before the failover
until the failback starts, and is stopped on any abort.

Scope `partial` (monthly) moves neither data nor traffic: readiness, the DR
node group scaled to its full size and back, an on-demand restore from
backup (`automation.backup_verify`), both regions' Route53 health checks, and
canaries written in the primary region and counted in the DR region (what
replication delivered: the RPO the platform would have had).

The world (stack, clients, clock, journal) comes from `automation.drill.world`;
production is known from the stack's `environment` config key (default
`production`) and refused without `--allow-production --reason`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from automation.drill.probes import Canaries, loss_window_seconds
from automation.drill.world import DrillEvent, DrillWorld
from automation.errors import DrctlError
from automation.journal import RunParameters, RunRecord, RunStatus, iso
from automation.runbook import Runbook, RunContext, RunFailedError
from automation.runbooks.failback import (
    prepare_graph,
    prepare_runbook,
    run_failback_switch,
    switch_graph,
    switch_runbook,
)
from automation.runbooks.failover import FailoverMode, failover_graph, failover_runbook
from automation.runbooks.graph import RunbookGraph
from automation.runbooks.steps import reading_check, state_is
from automation.timings import Op, timing
from components.config import PRODUCTION, DrState, PlatformConfig
from components.naming import cluster_name, node_group_name

OBJECTIVE_MISSED_EXIT = 5
"""The drill ran, and its measured RTO or RPO missed the target: the scheduled workflow fails on it."""
FAILED_EXIT = 1
FIS_EXPERIMENT = "crossRegionConnectivity"
PARTIAL_RUNBOOK = "drill-partial"


class Scope(StrEnum):
    FULL = "full"
    PARTIAL = "partial"


@dataclass(frozen=True)
class LiveOptions:
    scope: Scope
    reason: str
    allow_production: bool = False
    hold_seconds: float = 0
    inject_fault: bool = False
    canary_count: int = 3
    canary_interval_seconds: float = 5


PARTIAL_DRILL_OPERATIONS: Mapping[str, tuple[Op, ...]] = {
    "check_readiness": (Op.READINESS_CHECKS,),
    "scale_up_dr_compute": (Op.NODE_GROUP_SCALE_UP,),  # counted from the scaling request, as in the graphs
    "check_dns_health_checks": (Op.AWS_API_CALL,),
    "scale_down_dr_compute": (Op.NODE_GROUP_UPDATE,),
}
"""What the partial drill's steps wait on (automation/timings.py); the restore from backup has no figure there.
The full drill's runbooks take theirs from their dependency graphs, the ones `drctl plan` schedules."""


def live_drill_graphs(cfg: PlatformConfig) -> dict[str, RunbookGraph]:
    """The graphs of the runbooks a full drill runs, by runbook name."""
    graphs = (failover_graph(cfg, FailoverMode.GRACEFUL), prepare_graph(cfg), switch_graph(cfg))
    return {graph.runbook: graph for graph in graphs}


def predicted_seconds(runbook: str, step: str, cfg: PlatformConfig) -> dict[str, Any] | None:
    """The timing table's typical and worst figures for a step, with the operations they add up.

    A step of a graphed runbook is predicted as the graph counts it (a scale-up from its request); a step
    that waits on nothing the table models has no prediction.
    """
    graph = live_drill_graphs(cfg).get(runbook)
    if graph is not None and step in graph.dependencies():
        node = graph.node(step)
        operations, typical, worst = node.waits_on, node.seconds(cfg), node.seconds(cfg, worst=True)
    else:
        operations = PARTIAL_DRILL_OPERATIONS.get(step, ()) if runbook == PARTIAL_RUNBOOK else ()
        typical = sum(timing(op, cfg).typical_seconds for op in operations)
        worst = sum(timing(op, cfg).worst_seconds for op in operations)
    if not operations:
        return None
    return {"typical_seconds": typical, "worst_seconds": worst, "operations": [str(op) for op in operations]}


def refuse_production(cfg: PlatformConfig, stack: str, options: LiveOptions) -> str | None:
    """A production stack (config `environment`, default production) only with --allow-production and a reason.

    Returns what the report and the journal record about it.
    """
    if cfg.environment != PRODUCTION:
        return None
    if not options.allow_production:
        raise DrctlError(
            f"{stack} is a production stack (config dr-platform:environment is {cfg.environment}, the default): a "
            "live drill there fails production over for real",
            hint="rehearse on the drill stack (Pulumi.drill.yaml, environment: drill); to drill production on "
            "purpose, in a planned window, pass --allow-production --reason '...'",
        )
    if not options.reason.strip():
        raise DrctlError("--allow-production needs --reason", hint="the reason is recorded in the journal and report")
    return f"production drill allowed: {options.reason}"


@dataclass
class LiveDrill:
    world: DrillWorld
    options: LiveOptions
    canaries: Canaries | None
    restore_check: Callable[[], Mapping[str, Any]]
    """The partial drill's restore from backup (backup-verify's on-demand restore): a dict with `passed`."""
    fault: Any | None = None
    """automation.drill.faults.FaultExperiment when --inject-fault; stopped on abort."""
    output: Callable[[str], None] = lambda line: None
    drill_id: str = field(default_factory=lambda: f"drill-{uuid.uuid4().hex[:12]}")
    events: list[DrillEvent] = field(default_factory=list)
    runs: list[RunRecord] = field(default_factory=list)
    checkpoints: dict[str, dict[str, Any]] = field(default_factory=dict)
    loss_windows: dict[str, float | None] = field(default_factory=dict)
    production_note: str | None = None
    started_at: datetime | None = None

    # --- plumbing ---------------------------------------------------------------------------

    def event(self, phase: str, text: str) -> None:
        self.events.append(DrillEvent(self.world.clock.now(), phase, text))
        self.output(f"[{phase}] {text}")

    def parameters(self, mode: str | None = None) -> RunParameters:
        options = {"drill": self.drill_id, "scope": self.options.scope.value}
        if self.production_note:
            options["production"] = self.production_note
        return RunParameters(reason=self.options.reason, operator=self.world.operator, mode=mode, options=options)

    def engine(self) -> Any:
        return self.world.engine(lambda line: self.output(f"    {line}"))

    def run_runbook(self, runbook: Runbook, mode: str | None = None) -> RunRecord:
        try:
            outcome = self.engine().run(runbook, self.parameters(mode))
        except RunFailedError as failure:
            self.runs.append(failure.run)
            raise
        self.runs.append(outcome.run)
        self.event(runbook.name, f"{runbook.name} {outcome.run.status.value}")
        return outcome.run

    def write_canaries(self, region: str) -> None:
        if self.canaries is not None:
            self.canaries.write(region, self.drill_id, lambda line: self.event("canaries", line))

    def count_canaries(self, name: str, region: str) -> None:
        if self.canaries is None:
            return
        survivals, unmeasured = self.canaries.read(region, self.drill_id)
        self.checkpoints[name] = {
            "region": region,
            "at": iso(self.world.clock.now()),
            "kinds": survivals,
            "not_measured": unmeasured,
        }
        self.loss_windows[name] = loss_window_seconds(survivals, self.canaries.written)
        lost = ", ".join(f"{s.kind} {len(s.lost)}/{s.written}" for s in survivals) or "nothing measured"
        self.event(name, f"canaries in {region}: lost {lost}")

    # --- scopes -----------------------------------------------------------------------------

    def preflight(self) -> PlatformConfig:
        stack = self.world.stack.fully_qualified_name
        cfg = self.world.context().config()
        self.production_note = refuse_production(cfg, stack, self.options)
        if cfg.dr_state is not DrState.STEADY or cfg.active_region != cfg.primary_region:
            raise DrctlError(
                f"{stack} is {cfg.dr_state.value} with {cfg.active_region} active: a drill starts from steady",
                hint="finish or undo the transition under way first (drctl status, drctl failback ...)",
            )
        if self.options.inject_fault and self.fault is None:
            raise DrctlError(
                "--inject-fault: the stack declares no fault-injection templates",
                hint="set dr-platform:faultInjection: true on the drill stack and deploy it (docs/fault-injection.md)",
            )
        return cfg

    def run(self) -> dict[str, Any]:
        cfg = self.preflight()
        self.started_at = self.world.clock.now()
        result = "succeeded"
        try:
            if self.options.scope is Scope.FULL:
                self.full(cfg)
            else:
                result = self.partial(cfg)
        except (RunFailedError, DrctlError) as failure:
            result = (
                "refused"
                if isinstance(failure, RunFailedError) and failure.run.status is RunStatus.REFUSED
                else "failed"
            )
            self.event("drill", f"{result}: {failure}")
            self.stop_fault(f"drill {result}")
        except BaseException:
            self.stop_fault("drill interrupted")
            raise
        from automation.drill.live_report import build_live_report

        return build_live_report(self, cfg, result)

    def full(self, cfg: PlatformConfig) -> None:
        ctx = self.world.context()
        if self.fault is not None:
            self.event("fault", self.fault.start(cfg.primary_region, self.drill_id))
        self.write_canaries(cfg.primary_region)
        self.event("failover", "drctl failover --mode graceful")
        self.run_runbook(failover_runbook(ctx, FailoverMode.GRACEFUL), FailoverMode.GRACEFUL.value)
        self.count_canaries("after-failover", cfg.dr_region)
        self.stop_fault("failed over: the primary region is needed for the failback")
        if self.options.hold_seconds:
            self.event("hold", f"holding in {cfg.dr_region} for {self.options.hold_seconds:g} s")
            self.world.clock.sleep(self.options.hold_seconds)
        self.event("failback", "drctl failback prepare")
        self.run_runbook(prepare_runbook(self.world.context()))
        self.write_canaries(cfg.dr_region)
        self.event("failback", "drctl failback switch")
        switched = run_failback_switch(self.engine(), self.world.context(), self.parameters())
        self.runs.extend(run for run in (switched.switch_run, switched.outcome.run) if run is not None)
        if switched.result == "rolled-back":
            raise DrctlError(f"the failback switch rolled back to {cfg.dr_region}: {switched.cause}")
        self.event("failback", f"failback switch {switched.result}")
        self.count_canaries("final", cfg.primary_region)

    def partial(self, cfg: PlatformConfig) -> str:
        self.write_canaries(cfg.primary_region)
        ctx = self.world.context()
        try:
            run = self.run_runbook(partial_runbook(ctx, cfg, self.restore_check))
        except RunFailedError:
            # The runbook stops at its first failure: DR compute it scaled up must not stay at full size.
            size = cfg.node_group_standby
            outcome = ctx.aws.scale_node_group(cfg.dr_region, cluster_name(cfg, "dr"), node_group_name(cfg, "dr"), size)
            self.event("cleanup", f"DR compute back to {size.desired} node(s): {outcome.detail}")
            raise
        self.count_canaries("replicated", cfg.dr_region)
        return "succeeded" if run.status is RunStatus.SUCCEEDED else "failed"

    def stop_fault(self, why: str) -> None:
        if self.fault is not None and self.fault.running:
            self.event("fault", self.fault.stop(why))


def partial_runbook(ctx: Any, cfg: PlatformConfig, restore_check: Callable[[], Mapping[str, Any]]) -> Runbook:
    """Readiness, DR compute up and back down, a restore from backup, the health checks: nothing moves."""
    dr, primary = cfg.dr_region, cfg.primary_region
    cluster, group = cluster_name(cfg, "dr"), node_group_name(cfg, "dr")
    outputs = ctx.stack.outputs()
    checks = ((outputs.get("dns") or {}).get("healthChecks")) or {}

    def readiness(run: RunContext) -> dict[str, Any]:
        from automation.runbooks.status import NOT_READY, read_status

        report = read_status(ctx)
        if not report.ready:
            raise DrctlError(
                "not ready: "
                + "; ".join(f"{r.check} ({r.region}): {r.detail}" for r in report.readings if r.status in NOT_READY)
            )
        return {"readings": len(report.readings), "overall": report.overall.value}

    def scale(size: Any) -> Callable[[RunContext], dict[str, Any]]:
        def action(run: RunContext) -> dict[str, Any]:
            outcome = ctx.aws.scale_node_group(dr, cluster, group, size)
            ready = ctx.aws.wait_until_nodes_ready(dr, cluster, group, size.desired)
            return {"detail": outcome.detail, "ready_nodes": ready}

        return action

    def restore(run: RunContext) -> dict[str, Any]:
        verdict = dict(restore_check())
        if not verdict.get("passed"):
            raise DrctlError(
                "restore from backup failed: " + "; ".join(verdict.get("failures") or ["see backup-verify"])
            )
        return verdict

    health = tuple(
        reading_check(f"health_check_{region}", lambda run, r=region, i=check: ctx.aws.health_check(r, i))
        for region, check in checks.items()
    )
    return Runbook(
        name=PARTIAL_RUNBOOK,
        description=f"partial drill of {ctx.stack.fully_qualified_name}: nothing moves",
        preflight=(state_is(ctx, DrState.STEADY),),
        items=(
            ctx.step("check_readiness", readiness, description="drctl status: no failing reading in either region"),
            ctx.step(
                "scale_up_dr_compute",
                scale(cfg.node_group_full),
                description=f"{group} in {dr} to {cfg.node_group_full.desired} nodes, all Ready",
                timeout_seconds=ctx.settings.compute_timeout_seconds * 2 + 60,
            ),
            ctx.step(
                "restore_from_backup",
                restore,
                description="backup-verify: restore testing results per vault, an on-demand restore to scratch",
                timeout_seconds=4 * 3600,
            ),
            ctx.step(
                "check_dns_health_checks",
                lambda run: {"regions": sorted(checks)},
                description=f"Route53 health checks of {primary} and {dr} healthy",
                post_checks=health,
            ),
            ctx.step(
                "scale_down_dr_compute",
                scale(cfg.node_group_standby),
                description=f"{group} in {dr} back to {cfg.node_group_standby.desired} node(s)",
                timeout_seconds=ctx.settings.compute_timeout_seconds * 2 + 60,
            ),
        ),
    )


def dry_run_lines(drill: LiveDrill) -> list[str]:
    """What the drill would do, from the runbooks' own step lists: no AWS call that changes anything."""
    cfg = drill.preflight()
    ctx = drill.world.context()
    stack = drill.world.stack.fully_qualified_name
    lines = [f"live drill ({drill.options.scope.value}) of {stack} (dry-run: nothing will be changed)"]
    if drill.production_note:
        lines.append(drill.production_note)
    count = drill.options.canary_count
    canaries = f"write {count} canaries per data path (S3 objects; database rows and cache keys by a probe Job)"
    if drill.options.scope is Scope.FULL:
        if drill.fault is not None:
            lines.append(f"start the FIS experiment {FIS_EXPERIMENT} of {cfg.primary_region} (tag dr-platform:stack)")
        lines.append(f"{canaries} in {cfg.primary_region}")
        phases: list[tuple[str, Runbook | None]] = [
            ("failover --mode graceful", failover_runbook(ctx, FailoverMode.GRACEFUL)),
            (f"count the canaries in {cfg.dr_region}; stop the FIS experiment", None),
            (f"hold in {cfg.dr_region} for {drill.options.hold_seconds:g} s", None),
            ("failback prepare", prepare_runbook(ctx)),
            (f"{canaries} in {cfg.dr_region}", None),
            ("failback switch", switch_runbook(ctx)),
            (f"count the canaries in {cfg.primary_region}", None),
        ]
    else:
        phases = [
            (f"{canaries} in {cfg.primary_region}", None),
            ("partial drill", partial_runbook(ctx, cfg, drill.restore_check)),
            (f"count the canaries in {cfg.dr_region}", None),
        ]
    for title, runbook in phases:
        lines.append(f"- {title}")
        for step, group in runbook.steps() if runbook else ():
            predicted = predicted_seconds(runbook.name, step.name, cfg)
            guess = f" (predicted {predicted['typical_seconds']:g} s)" if predicted else ""
            lines.append(f"    {step.name}{f' [{group}]' if group else ''}{guess}: {step.description}")
    return lines
