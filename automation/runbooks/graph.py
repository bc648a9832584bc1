"""The DR runbooks' dependency graphs: what each step waits for and why, and the RTO floor they allow.

A graph is data: each step names the steps it really depends on, with the AWS
behaviour that makes it a dependency, and the operations it waits on
(`automation.timings`). The runbooks run exactly this graph (`as_group`: one
`Parallel` group whose `after` edges are these dependencies), so no step waits
on one it does not depend on, and `drctl plan` and every report compute the
same floor from it:

    floor = detection + readiness (emergency: the outage starts before the run)
            + the longest chain of step durations up to the step that verifies service

A planned switch (graceful failover, failback switch) counts from the write
fence instead (before it users are served as usual), a rollback from its own
preflight (writes stopped when the switch it rolls back fenced them).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from automation.runbook import Parallel, Runbook, Step
from automation.timings import Op, latency, timing
from components.config import PlatformConfig


@dataclass(frozen=True)
class Node:
    """One step as the graph sees it."""

    name: str
    after: Mapping[str, str] = field(default_factory=dict)
    """Dependency -> why it is one (the AWS behaviour, with its catalogue id)."""
    waits_on: tuple[Op, ...] = ()
    """What the step waits for, one after another: its duration is their sum."""
    overlaps: tuple[Op, ...] = ()
    """Part of `waits_on` that a dependency already waited for (a scale-up counted from its request)."""

    def seconds(self, cfg: PlatformConfig, *, worst: bool = False) -> float:
        total = sum(latency(op, cfg, worst=worst) for op in self.waits_on)
        return max(0.0, total - sum(latency(op, cfg, worst=worst) for op in self.overlaps))


@dataclass(frozen=True)
class Scheduled:
    name: str
    after: tuple[str, ...]
    start: float
    finish: float
    worst_start: float
    worst_finish: float
    waits_on: tuple[Op, ...]
    critical: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "after": list(self.after),
            "typicalStart": self.start,
            "typicalFinish": self.finish,
            "worstStart": self.worst_start,
            "worstFinish": self.worst_finish,
            "waitsOn": [op.value for op in self.waits_on],
            "critical": self.critical,
        }


@dataclass(frozen=True)
class Floor:
    """The shortest RTO the graph allows, typical and worst case, and the chain that sets it."""

    runbook: str
    typical_seconds: float
    worst_seconds: float
    lead_in: tuple[Op, ...]
    """What comes before the first step: detection and the preflight (emergency), nothing (a planned switch)."""
    critical_path: tuple[str, ...]
    steps: tuple[Scheduled, ...]
    starts_at: str
    """What the floor counts from: `the disruption before the run` or the step whose start stops writes."""

    def from_run_start(self, cfg: PlatformConfig) -> float:
        """The floor counted from drctl's start, as a live run measures it: the outage's detection came before."""
        detection = sum(latency(op, cfg) for op in self.lead_in if op is Op.HEALTH_CHECK_DETECTION)
        return self.typical_seconds - detection

    def to_json(self, cfg: PlatformConfig) -> dict[str, Any]:
        ops = sorted({op for op in self.lead_in} | {op for step in self.steps for op in step.waits_on})
        return {
            "runbook": self.runbook,
            "typicalSeconds": self.typical_seconds,
            "worstSeconds": self.worst_seconds,
            "from": self.starts_at,
            "leadIn": [op.value for op in self.lead_in],
            "criticalPath": list(self.critical_path),
            "steps": [step.to_json() for step in self.steps],
            "durations": [timing(op, cfg).to_json() for op in ops],
        }


@dataclass(frozen=True)
class RunbookGraph:
    runbook: str
    nodes: tuple[Node, ...]
    verified_by: str
    """The step whose end is verified service: the RTO ends there."""
    disruption_starts_at: str | None
    """The step whose start stops writes (a planned switch); None: the disruption started before the run."""
    lead_in: tuple[Op, ...] = ()
    """What passes before the run's first step counts: an outage's detection and the run's preflight."""

    def __post_init__(self) -> None:
        names = [node.name for node in self.nodes]
        missing = sorted({d for node in self.nodes for d in node.after} - set(names))
        if missing or len(set(names)) != len(names) or self.verified_by not in names:
            raise ValueError(f"graph {self.runbook}: unknown dependencies {missing} or duplicate/unknown steps")

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def dependencies(self) -> dict[str, set[str]]:
        return {node.name: set(node.after) for node in self.nodes}

    def as_group(self, steps: Sequence[Step]) -> Parallel:
        """The runbook's steps as one group that runs this graph; `steps` must be exactly its nodes."""
        by_name = {step.name: step for step in steps}
        if set(by_name) != {node.name for node in self.nodes} or len(by_name) != len(steps):
            raise ValueError(
                f"graph {self.runbook}: steps {sorted(by_name)} differ from its nodes "
                f"{sorted(node.name for node in self.nodes)}"
            )
        return Parallel(
            self.runbook,
            tuple(by_name[name] for name in self.run_order()),
            after={node.name: tuple(node.after) for node in self.nodes if node.after},
        )

    def run_order(self) -> list[str]:
        """The steps in an order each comes after its dependencies (else as listed): the journal's order."""
        order: list[str] = []
        while len(order) < len(self.nodes):
            order.append(next(n.name for n in self.nodes if n.name not in order and set(n.after) <= set(order)))
        return order

    def schedule(self, cfg: PlatformConfig, *, worst: bool = False) -> dict[str, tuple[float, float]]:
        """(start, finish) of each step from the run's start: it starts when its last dependency finished."""
        return _schedule(self.dependencies(), lambda name: self.node(name).seconds(cfg, worst=worst))

    def modelled_seconds(self, runbook: Runbook, cfg: PlatformConfig) -> float:
        """The typical RTO of `runbook` as the engine runs it (its items one after another, a group's steps after
        their `after` edges: `structural_waits`), each step lasting what this graph says it waits on.

        Equal to the floor when the runbook waits only on real dependencies; more for each needless wait on
        the way to verification.
        """
        waits = structural_waits(runbook)
        if set(waits) != set(self.dependencies()):
            raise ValueError(
                f"graph {self.runbook}: runbook {runbook.name}'s steps {sorted(waits)} differ from its nodes"
            )
        return self._rto(_schedule(waits, lambda name: self.node(name).seconds(cfg)), cfg, worst=False)

    def critical_path(self, times: Mapping[str, tuple[float, float]]) -> tuple[str, ...]:
        """The chain of steps, each the dependency that finished last, that ends at verification."""
        path = [self.verified_by]
        while self.node(path[-1]).after:
            path.append(max(self.node(path[-1]).after, key=lambda name: (times[name][1], name)))
        return tuple(reversed(path))

    def _rto(self, times: Mapping[str, tuple[float, float]], cfg: PlatformConfig, *, worst: bool) -> float:
        """From the disruption (before the run, or the step that stops writes) to the end of verification."""
        before = sum(latency(op, cfg, worst=worst) for op in self.lead_in)
        start = 0.0 if self.disruption_starts_at is None else times[self.disruption_starts_at][0]
        return before + times[self.verified_by][1] - start

    def floor(self, cfg: PlatformConfig) -> Floor:
        typical, worst = self.schedule(cfg), self.schedule(cfg, worst=True)
        path = self.critical_path(typical)
        return Floor(
            runbook=self.runbook,
            typical_seconds=self._rto(typical, cfg, worst=False),
            worst_seconds=self._rto(worst, cfg, worst=True),
            lead_in=self.lead_in,
            critical_path=path,
            steps=tuple(
                Scheduled(
                    node.name,
                    tuple(node.after),
                    *typical[node.name],
                    *worst[node.name],
                    node.waits_on,
                    node.name in path,
                )
                for node in self.nodes
            ),
            starts_at=self.disruption_starts_at or "the disruption before the run",
        )


def _schedule(dependencies: Mapping[str, set[str]], seconds: Callable[[str], float]) -> dict[str, tuple[float, float]]:
    """(start, finish) of each step: it starts when the last step it waits for finished."""
    times: dict[str, tuple[float, float]] = {}
    while len(times) < len(dependencies):
        for name, waits in dependencies.items():
            if name not in times and waits <= set(times):
                start = max((times[d][1] for d in waits), default=0.0)
                times[name] = (start, start + seconds(name))
    return times


def structural_waits(runbook: Runbook) -> dict[str, set[str]]:
    """What each step of a built runbook waits for: the items before it, and its group's `after` edges."""
    waits: dict[str, set[str]] = {}
    before: set[str] = set()
    for item in runbook.items:
        steps = item.steps if isinstance(item, Parallel) else (item,)
        for step in steps:
            waits[step.name] = set(before) | (
                set(item.after.get(step.name, ())) if isinstance(item, Parallel) else set()
            )
        before |= {step.name for step in steps}
    return waits


def needless_waits(runbook: Runbook, graph: RunbookGraph) -> dict[str, set[str]]:
    """The steps each step of `runbook` waits for, directly or not, that `graph` does not make it depend on."""
    waits, needed = closure(structural_waits(runbook)), closure(graph.dependencies())
    return {step: extra for step, waited in waits.items() if (extra := waited - needed.get(step, set()))}


def closure(dependencies: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """Every step each one waits for, directly or not."""
    found: dict[str, set[str]] = {}

    def of(name: str) -> set[str]:
        if name not in found:
            direct = dependencies.get(name, set())
            found[name] = set(direct).union(*(of(d) for d in direct)) if direct else set()
        return found[name]

    for name in dependencies:
        of(name)
    return found
