"""`drctl plan`: what a DR transition would do, worked out offline.

Evaluates the program (under mocks: no AWS, no Pulumi CLI) for the stack's
current config and for the config the transition writes
(`transitions.transition_config`), then reports:

- the inventory per region and the change set between the two evaluations,
  with warnings for stateful resources that would be replaced or deleted;
- the update's scope: a failover targets the DR region and global resources
  only, so the failed region's resources (and any change to them) are left
  alone until failback;
- the policy pack's results on the target evaluation (the same rules,
  `policy.policies`, that `pulumi preview --policy-pack policy` enforces);
- what AWS would refuse in the target evaluation (`automation.aws_rules`): blocking,
  since the update would fail there;
- the RTO floor of the transition's runbook: its dependency graph
  (`automation.runbooks.graph`) over the one timing table (`automation.timings`),
  next to the RTO target; for a failover also each standby profile's floor
  beside the standby region's monthly running cost (`automation.costs`, an
  estimate from the list prices of `automation.prices`); and the RPO exposure of each replication
  mechanism the program declares, next to the RPO target.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pulumi_policy import PolicyCustomTimeouts, PolicyProviderResource, PolicyResource, PolicyResourceOptions
from rich.console import Console
from rich.table import Table

from automation import prices
from automation.aws_rules import Refusal, check_declared
from automation.changes import STATEFUL_TYPES, Change, ChangeSet, Operation, diff, urn_type
from automation.costs import StandbyCost, standby_region_cost
from automation.evaluate import GLOBAL, Evaluation, evaluate_program
from automation.inventory import inventory
from automation.runbook import Runbook
from automation.runbooks.graph import Floor
from automation.targets import surviving_region_targets
from automation.timings import ReplicationLag, latency, replication_lag, timing
from automation.transitions import Transition, next_state, parse_state, transition_config, transition_of
from components.config import PlatformConfig, StandbyProfile, parse_config
from policy.policies import ALL_POLICIES, Violation, check_resources, check_stack

# --- RTO budget ----------------------------------------------------------------------


@dataclass(frozen=True)
class RtoBudget:
    """The floor of the transition's runbook (its dependency graph over `automation.timings`) and its modelled RTO:
    the built runbook's steps scheduled as the engine runs them, with the same typical durations."""

    transition: Transition
    floor: Floor
    modelled_seconds: float
    target_seconds: int
    interrupts_service: bool
    alternative: Floor | None = None
    """Failover: the planned (graceful) switch's read-only window beside the emergency's RTO."""

    @property
    def typical_seconds(self) -> float:
        return self.floor.typical_seconds

    @property
    def worst_seconds(self) -> float:
        return self.floor.worst_seconds

    @property
    def ratio_to_floor(self) -> float:
        """Modelled RTO over the floor: 1 when the runbook waits only on what it depends on (issue 16: <= 1.1)."""
        return self.modelled_seconds / self.typical_seconds

    def to_json(self, cfg: PlatformConfig) -> dict[str, Any]:
        return {
            "transition": self.transition.value,
            "interruptsService": self.interrupts_service,
            "targetSeconds": self.target_seconds,
            "typicalSeconds": self.typical_seconds,
            "worstSeconds": self.worst_seconds,
            "modelledSeconds": self.modelled_seconds,
            "ratioToFloor": round(self.ratio_to_floor, 3),
            "withinTarget": {
                "typical": self.typical_seconds <= self.target_seconds,
                "worst": self.worst_seconds <= self.target_seconds,
            },
            "floor": self.floor.to_json(cfg),
            "graceful": self.alternative.to_json(cfg) if self.alternative else None,
        }


def rto_budget(transition: Transition, raw_config: Mapping[str, str], stack: str = "prod") -> RtoBudget:
    """The floor and the modelled RTO of the runbook drctl would run for `transition` from `raw_config`."""
    from automation.runbooks.failback import prepare_graph, switch_graph
    from automation.runbooks.failover import FailoverMode, failover_graph

    cfg = parse_config(raw_config)
    if transition is Transition.FAILOVER:
        graph = failover_graph(cfg, FailoverMode.EMERGENCY)
        alternative = failover_graph(cfg, FailoverMode.GRACEFUL).floor(cfg)
    else:
        graph = prepare_graph(cfg) if transition is Transition.FAILBACK_PREPARE else switch_graph(cfg)
        alternative = None
    return RtoBudget(
        transition=transition,
        floor=graph.floor(cfg),
        modelled_seconds=graph.modelled_seconds(built_runbook(transition, raw_config, stack), cfg),
        target_seconds=cfg.rto_seconds,
        interrupts_service=transition is not Transition.FAILBACK_PREPARE,
        alternative=alternative,
    )


def built_runbook(transition: Transition, raw_config: Mapping[str, str], stack: str) -> Runbook:
    """The runbook `drctl` builds for `transition` from this config (the emergency one for a failover).

    Only built: its steps are closures over a stand-in stack and unused AWS clients, and nothing runs.
    """
    from automation.aws.clients import AwsClients
    from automation.journal import SystemClock
    from automation.runbooks.context import DrAws, DrContext
    from automation.runbooks.failback import prepare_runbook, switch_runbook
    from automation.runbooks.failover import FailoverMode, failover_runbook
    from automation.stack import PROJECT_NAME
    from automation.stack_standin import StandInStack

    clock = SystemClock()
    standin = StandInStack(raw_config, name=f"organization/{PROJECT_NAME}/{stack}", deployed=False)
    ctx = DrContext(standin, DrAws(AwsClients(), clock), clock)
    if transition is Transition.FAILOVER:
        return failover_runbook(ctx, FailoverMode.EMERGENCY)
    return prepare_runbook(ctx) if transition is Transition.FAILBACK_PREPARE else switch_runbook(ctx)


@dataclass(frozen=True)
class ProfileOption:
    """One standby profile: the emergency failover's floor and the standby region's monthly cost under it."""

    profile: StandbyProfile
    rto: Floor
    cost: StandbyCost
    current: bool

    def to_json(self, cfg: PlatformConfig) -> dict[str, Any]:
        return {
            "profile": self.profile.value,
            "current": self.current,
            "rtoFloorSeconds": self.rto.typical_seconds,
            "rtoWorstSeconds": self.rto.worst_seconds,
            "withinTarget": self.rto.typical_seconds <= cfg.rto_seconds,
            "cost": self.cost.to_json(),
        }


def standby_profiles(cfg: PlatformConfig) -> list[ProfileOption]:
    """Each standby profile side by side: what its running cost buys in RTO."""
    from automation.runbooks.failover import FailoverMode, failover_graph

    options = []
    for profile in StandbyProfile:
        variant = replace(cfg, standby_profile=profile)
        options.append(
            ProfileOption(
                profile,
                failover_graph(variant, FailoverMode.EMERGENCY).floor(variant),
                standby_region_cost(variant),
                profile is cfg.standby_profile,
            )
        )
    return options


# --- RPO exposure ----------------------------------------------------------------------


@dataclass(frozen=True)
class RpoExposure:
    lag: ReplicationLag
    target_seconds: int

    @property
    def within_target(self) -> bool | None:
        """None when AWS states no bound to compare."""
        bound = self.lag.bound_seconds
        return None if bound is None else bound <= self.target_seconds

    def to_json(self) -> dict[str, Any]:
        return {
            "mechanism": self.lag.mechanism,
            "data": self.lag.data,
            "typicalSeconds": self.lag.typical_seconds,
            "boundSeconds": self.lag.bound_seconds,
            "targetSeconds": self.target_seconds,
            "withinTarget": self.within_target,
            "note": self.lag.note,
            "source": self.lag.source,
        }


def rpo_exposure(evaluation: Evaluation) -> list[RpoExposure]:
    """The replication mechanisms the program declares, with their lag bounds."""
    cfg = evaluation.config
    types = {r.type for r in evaluation.resources}
    mechanisms = []
    if any(r.inputs.get("replicateSourceDb") for r in evaluation.of_type("aws:rds/instance:Instance")):
        mechanisms.append("rds-cross-region-replica")
    if "aws:s3/bucketReplicationConfig:BucketReplicationConfig" in types:
        mechanisms.append("s3-replication-time-control" if _s3_rtc_enabled(evaluation) else "s3-replication")
    if "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup" in types:
        mechanisms.append("elasticache-global-datastore")
    if "aws:rds/instance:Instance" in types:
        mechanisms.append("rds-point-in-time-restore")
    return [RpoExposure(replication_lag(m, cfg), cfg.rpo_seconds) for m in mechanisms]


def _s3_rtc_enabled(evaluation: Evaluation) -> bool:
    rules = [
        rule
        for config in evaluation.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
        for rule in config.inputs.get("rules") or []
    ]
    return bool(rules) and all(
        ((rule.get("destination") or {}).get("replicationTime") or {}).get("status") == "Enabled" for rule in rules
    )


# --- policy results ------------------------------------------------------------------


def policy_resources(evaluation: Evaluation) -> list[PolicyResource]:
    """The declared cloud resources as the policy engine presents them (inputs as props)."""
    resources = []
    for r in evaluation.resources:
        if not r.custom or r.type.startswith("pulumi:providers:"):
            continue
        options = PolicyResourceOptions(
            protect=r.protect,
            ignore_changes=list(r.ignore_changes),
            delete_before_replace=r.delete_before_replace,
            aliases=[],
            custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
            additional_secret_outputs=[],
            parent=r.parent or None,
        )
        provider = (
            PolicyProviderResource("pulumi:providers:aws", {"region": r.region}, "", "")
            if r.region and r.region != GLOBAL
            else None
        )
        resources.append(PolicyResource(r.type, r.inputs, r.urn, r.name, options, provider, None, [], {}))
    return resources


def policy_violations(evaluation: Evaluation) -> list[Violation]:
    resources = policy_resources(evaluation)
    return check_resources(resources) + check_stack(resources)


# --- the plan ------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    stack: str
    transition: Transition
    before: Evaluation
    after: Evaluation
    changes: ChangeSet
    targets: list[str] | None  # None: the update covers the whole stack
    violations: list[Violation]
    refusals: list[Refusal]
    """What AWS would refuse in the target declaration: the update would fail, so the plan is blocked."""
    rto: RtoBudget
    rpo: list[RpoExposure]
    profiles: list[ProfileOption]

    @property
    def blocked(self) -> bool:
        return bool(self.refusals)

    @property
    def failed_region(self) -> str | None:
        """The region a failover must not touch (the one that was active)."""
        return self.before.config.active_region if self.transition is Transition.FAILOVER else None

    def outside_targets(self) -> list[Change]:
        """Changes the targeted update leaves for later (they wait for failback)."""
        if self.targets is None:
            return []
        targeted = set(self.targets)
        return [c for c in self.changes.effective() if c.urn not in targeted]

    def untouched(self) -> list[str]:
        """URNs of the failed region's resources, which the update must leave as they are."""
        if self.failed_region is None:
            return []
        return sorted(r.urn for r in self.after.resources if r.custom and r.region == self.failed_region)

    def warnings(self) -> list[str]:
        found = []
        for change in self.changes.at_risk():
            deferred = " (outside the update's targets: it would happen at the next full update)"
            where = deferred if self.targets is not None and change.urn not in self.targets else ""
            found.append(
                f"{change.operation.value} of stateful {change.type} {change.name} in {change.region}{where}: "
                f"would lose {STATEFUL_TYPES[change.type]}"
                + (f"; forced by {', '.join(change.replace_reasons)}" if change.replace_reasons else "")
            )
            if change.protect:
                found.append(f"{change.name} is protected: the update would fail until protection is lifted")
        for violation in self.violations:
            found.append(f"policy {violation.policy}: {violation.message}")
        if self.rto.interrupts_service and self.rto.worst_seconds > self.rto.target_seconds:
            found.append(
                f"worst-case {self.transition.value} takes {_minutes(self.rto.worst_seconds)}, "
                f"over the {_minutes(self.rto.target_seconds)} RTO target"
            )
        for exposure in self.rpo:
            if exposure.within_target is False:
                found.append(
                    f"{exposure.lag.mechanism}: bound {_minutes(exposure.lag.bound_seconds or 0)} exceeds the "
                    f"{_minutes(exposure.target_seconds)} RPO target for {exposure.lag.data}"
                )
        return found

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "evaluation": "offline, under mocks (pulumi preview is the authority)",
            "transition": self.transition.value,
            "from": self.before.config.dr_state.value,
            "to": self.after.config.dr_state.value,
            "activeRegion": {"before": self.before.config.active_region, "after": self.after.config.active_region},
            "inventory": {"before": inventory(self.before), "after": inventory(self.after)},
            "changes": {
                "counts": self.changes.counts(),
                "resources": [c.to_json() for c in self.changes.effective()],
            },
            "atRisk": [c.to_json() for c in self.changes.at_risk()],
            "update": {
                "targeted": self.targets is not None,
                "targets": self.targets,
                "failedRegion": self.failed_region,
                "untouched": self.untouched(),
                "deferred": [c.to_json() for c in self.outside_targets()],
            },
            "policies": {
                "rules": [p.name for p in ALL_POLICIES],
                "violations": [{"policy": v.policy, "message": v.message, "urn": v.urn} for v in self.violations],
            },
            "awsRefusals": [{"behaviour": r.behaviour, "urn": r.urn, "message": r.message} for r in self.refusals],
            "blocked": self.blocked,
            "rto": self.rto.to_json(self.after.config),
            "standbyProfiles": {
                "current": self.before.config.standby_profile.value,
                "options": [option.to_json(self.before.config) for option in self.profiles],
                "prices": {"estimate": True, "readOn": prices.read_on(), "sources": prices.sources()},
            },
            "rpo": {"targetSeconds": self.after.config.rpo_seconds, "mechanisms": [e.to_json() for e in self.rpo]},
            "warnings": self.warnings(),
        }


def build_plan(raw_config: Mapping[str, str], to_state: str | None = None, stack: str = "prod") -> Plan:
    """Evaluate the current and the target config and compare them."""
    current = parse_config(raw_config).dr_state
    target = parse_state(to_state) if to_state else next_state(current)
    transition = transition_of(current, target)
    before = evaluate_program(raw_config, stack=stack)
    after = evaluate_program(transition_config(raw_config, target), stack=stack)
    failover = transition is Transition.FAILOVER
    targets = surviving_region_targets(after, before.config.active_region) if failover else None
    return Plan(
        stack=stack,
        transition=transition,
        before=before,
        after=after,
        changes=diff(before, after),
        targets=targets,
        violations=policy_violations(after),
        refusals=check_declared(after),
        rto=rto_budget(transition, raw_config, stack),
        # What a transition can lose is what replication had not copied when it started.
        rpo=rpo_exposure(before),
        profiles=standby_profiles(before.config),
    )


# --- rendering for people --------------------------------------------------------------

_OPERATION_STYLE = {
    Operation.CREATE: "green",
    Operation.UPDATE: "yellow",
    Operation.REPLACE: "bold magenta",
    Operation.DELETE: "bold red",
}


def render(plan: Plan, console: Console) -> None:
    before, after = plan.before.config, plan.after.config
    console.print(
        f"[bold]drctl plan[/bold]: {plan.transition.value} of stack {plan.stack} "
        f"({before.dr_state.value} -> {after.dr_state.value}, active region {before.active_region} -> "
        f"{after.active_region}); evaluated offline under mocks, [italic]pulumi preview is the authority[/italic]"
    )
    _render_inventory(plan, console)
    _render_changes(plan, console)
    _render_scope(plan, console)
    _render_policies(plan, console)
    _render_refusals(plan, console)
    _render_rto(plan, console)
    _render_profiles(plan, console)
    _render_rpo(plan, console)
    warnings = plan.warnings()
    for warning in warnings:
        console.print(f"[bold yellow]warning:[/bold yellow] {warning}")
    if not warnings:
        console.print("[green]no warnings[/green]")


def _render_inventory(plan: Plan, console: Console) -> None:
    counts = inventory(plan.after)
    regions = list(counts)
    table = Table(title=f"Inventory after {plan.transition.value} (resources per region)", title_justify="left")
    table.add_column("resource type")
    for region in regions:
        role = _role_label(plan.after.config, region)
        table.add_column(f"{region}\n{role}", justify="right")
    for type_token in sorted({t for per_type in counts.values() for t in per_type}):
        table.add_row(type_token, *(str(counts[region].get(type_token, "")) for region in regions))
    table.add_row("[bold]total[/bold]", *(f"[bold]{sum(counts[r].values())}[/bold]" for r in regions))
    console.print(table)


def _render_changes(plan: Plan, console: Console) -> None:
    counts = plan.changes.counts()
    summary = ", ".join(f"{n} {op}" for op, n in counts.items() if n)
    effective = plan.changes.effective()
    if not effective:
        console.print(f"Change set: no changes ({summary})")
        return
    table = Table(title=f"Change set ({summary})", title_justify="left")
    table.add_column("resource", no_wrap=True)
    for column in ("type", "region", "operation", "changed properties"):
        table.add_column(column)
    for change in effective:
        style = _OPERATION_STYLE.get(change.operation, "")
        operation = f"[{style}]{change.operation.value}[/{style}]" if style else change.operation.value
        if change.stateful:
            operation += " [bold](stateful)[/bold]"
        changed = ", ".join(f"{p} (forces new)" if p in change.replace_reasons else p for p in change.changed)
        table.add_row(change.name, change.type, change.region, operation, changed)
    console.print(table)


def _render_scope(plan: Plan, console: Console) -> None:
    if plan.targets is None:
        console.print(f"Update scope: the whole stack ({plan.transition.value} needs both regions)")
        return
    console.print(
        f"Update scope: {len(plan.targets)} targets ({plan.after.config.active_region}, global resources, "
        f"components and the stack); {len(plan.untouched())} resources in {plan.failed_region} are left exactly "
        "as they are in the state (no refresh, no update) until failback"
    )
    by_type = Counter(urn_type(urn) for urn in plan.untouched())
    if by_type:
        table = Table(title=f"Not touched by the failover update: {plan.failed_region}", title_justify="left")
        table.add_column("resource type")
        table.add_column("count", justify="right")
        for type_token, count in sorted(by_type.items()):
            table.add_row(type_token, str(count))
        console.print(table)
    deferred = plan.outside_targets()
    if deferred:
        title = "Changes the targeted update leaves for the next full update (failback)"
        table = Table(title=title, title_justify="left")
        for column in ("resource", "type", "region", "operation", "changed properties"):
            table.add_column(column)
        for change in deferred:
            table.add_row(change.name, change.type, change.region, change.operation.value, ", ".join(change.changed))
        console.print(table)


def _render_policies(plan: Plan, console: Console) -> None:
    if not plan.violations:
        console.print(f"[green]Policies: all {len(ALL_POLICIES)} rules pass on the target state[/green]")
        return
    table = Table(title="Policy violations on the target state", title_justify="left")
    for column in ("policy", "resource", "message"):
        table.add_column(column)
    for violation in plan.violations:
        table.add_row(violation.policy, (violation.urn or "stack").rsplit("::", 1)[-1], violation.message)
    console.print(table)


def _render_refusals(plan: Plan, console: Console) -> None:
    if not plan.refusals:
        console.print("[green]AWS rules: nothing in the target state that AWS is known to refuse[/green]")
        return
    table = Table(title="BLOCKING: AWS would refuse these in the target state", title_justify="left")
    for column in ("resource", "behaviour", "refusal"):
        table.add_column(column)
    for refusal in plan.refusals:
        table.add_row(refusal.urn.rsplit("::", 1)[-1], refusal.behaviour, refusal.message)
    console.print(table)


def _render_rto(plan: Plan, console: Console) -> None:
    rto = plan.rto
    floor = rto.floor
    table = Table(
        title=f"RTO floor: {rto.transition.value} (seconds from {floor.starts_at}; the runbook's dependency graph)",
        title_justify="left",
    )
    for column in ("step", "waits for", "typical", "worst", "waits on (automation/timings.py)"):
        table.add_column(column)
    for op in floor.lead_in:
        table.add_row(
            f"({op.value})", "-", f"{latency(op, plan.after.config):g}", "", timing(op, plan.after.config).basis
        )
    for step in sorted(floor.steps, key=lambda each: (each.start, each.finish, each.name)):
        name = f"[bold]{step.name}[/bold]" if step.critical else step.name
        table.add_row(
            name,
            ", ".join(step.after) or "-",
            f"{step.start:.0f} -> {step.finish:.0f}",
            f"{step.worst_start:.0f} -> {step.worst_finish:.0f}",
            ", ".join(f"{op.value} ({timing(op, plan.after.config).basis})" for op in step.waits_on) or "-",
        )
    console.print(table)
    console.print(f"Critical path (bold): {' -> '.join((*(op.value for op in floor.lead_in), *floor.critical_path))}")
    if not rto.interrupts_service:
        console.print(
            f"No traffic moves in {rto.transition.value}: it takes about {_minutes(rto.typical_seconds)} "
            f"(up to {_minutes(rto.worst_seconds)}) and is not downtime."
        )
        return
    console.print(
        f"RTO modelled (the built runbook's steps as the engine runs them, typical durations): "
        f"{_minutes(rto.modelled_seconds)}; floor {_minutes(rto.typical_seconds)}; ratio {rto.ratio_to_floor:.2f} "
        "(1.00: it waits on nothing it does not depend on)"
    )
    target = rto.target_seconds
    for label, seconds in (("floor, typical", rto.typical_seconds), ("floor, worst case", rto.worst_seconds)):
        verdict = "[green]within[/green]" if seconds <= target else "[bold red]over[/bold red]"
        console.print(f"RTO {label}: {_minutes(seconds)}, {verdict} the {_minutes(target)} target")
    if rto.alternative is not None:
        console.print(
            f"A planned (graceful) failover refuses writes for {_minutes(rto.alternative.typical_seconds)} "
            f"(worst {_minutes(rto.alternative.worst_seconds)}): from its write fence to verified service."
        )


def _render_profiles(plan: Plan, console: Console) -> None:
    table = Table(
        title=f"Standby profiles (config standbyProfile): emergency failover RTO floor vs the standby region's "
        f"running cost (ESTIMATE: on-demand list prices read {prices.read_on()}, main hourly items only)",
        title_justify="left",
    )
    for column in ("profile", "RTO floor", "worst case", "USD / month (estimate)", "not counted"):
        table.add_column(column)
    for option in plan.profiles:
        name = f"{option.profile.value}{' (current)' if option.current else ''}"
        table.add_row(
            name,
            _minutes(option.rto.typical_seconds),
            _minutes(option.rto.worst_seconds),
            f"{option.cost.monthly_usd:,.0f}",
            ", ".join(option.cost.unpriced) or "-",
        )
    console.print(table)
    console.print(
        f"Prices (automation/prices.py): {', '.join(prices.sources())} "
        "(excluded: data transfer, backups, CloudWatch, requests)"
    )


def _render_rpo(plan: Plan, console: Console) -> None:
    table = Table(
        title=f"RPO exposure per replication mechanism (target {_minutes(plan.after.config.rpo_seconds)})",
        title_justify="left",
    )
    for column in ("mechanism", "data", "typical lag", "bound", "vs target", "note"):
        table.add_column(column)
    for exposure in plan.rpo:
        bound = exposure.lag.bound_seconds
        verdict = {True: "[green]within[/green]", False: "[bold red]exceeds[/bold red]", None: "no bound"}[
            exposure.within_target
        ]
        table.add_row(
            exposure.lag.mechanism,
            exposure.lag.data,
            f"{exposure.lag.typical_seconds:.0f}s",
            "-" if bound is None else f"{bound:.0f}s",
            verdict,
            exposure.lag.note,
        )
    console.print(table)


def _role_label(cfg: PlatformConfig, region: str) -> str:
    if region not in (cfg.primary_region, cfg.dr_region):
        return "global" if region == GLOBAL else "other"  # e.g. Route53 metrics live in us-east-1
    role = cfg.role_of(region)
    return f"{role} (active)" if region == cfg.active_region else role


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"
