"""The seam between a drill and what it runs in: all that differs between `--sandbox` and `--live`.

A drill drives the production runbooks (`automation.runbooks`) built by the
same `DrContext` a `drctl failover` builds. What it gets them from is a
`DrillWorld`: the stack adapter, the AWS clients, the clock, the journal store,
and (live) who runs it. The sandbox passes moto's clients, the stand-in stack
and its latency clock (`automation.drill.run`); a live drill passes the real
stack through the Pulumi CLI, boto3 without an endpoint override, the wall
clock and the DR-region control store (`automation.drill.live`). Nothing else
of a drill knows which world it is in.

The data probes are the other half of the seam: the sandbox counts what its
modelled application wrote (`automation.sandbox.dataplane`), a live drill
writes canaries through the data paths drctl reaches (`automation.drill.probes`).
Both end in the same `Survival` rows of the data-loss table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from automation.aws import route53_view
from automation.aws.clients import AwsClients
from automation.aws.readiness import LoadBalancerMetrics
from automation.aws.waiting import Clock
from automation.journal import DocumentStore
from automation.runbook import RunbookEngine, RunContext
from automation.runbooks.context import DrAws, DrContext, RunbookSettings
from automation.stack import StackAdapter


@dataclass
class DrillEvent:
    """One line of a drill's timeline."""

    at: datetime
    phase: str
    text: str


@dataclass
class DrillWorld:
    """Where a drill's runbooks run."""

    stack: StackAdapter
    clients: AwsClients
    clock: Clock
    store: DocumentStore
    simulation: bool
    """True in the sandbox: every report and journal entry is labelled a simulation."""
    operator: str
    settings: RunbookSettings = field(default_factory=RunbookSettings)
    step_hook: Callable[[str], None] | None = None
    error_metrics: Callable[[str], LoadBalancerMetrics | None] | None = None
    record_dr_state: Callable[[RunContext, Mapping[str, str]], None] | None = None
    record_traffic_fence: Callable[[RunContext, bool], None] | None = None
    resolvers: tuple[route53_view.Resolve, route53_view.FindNameServers] | None = None
    """How Route53's answer is read from the zone's name servers; None: real DNS."""

    def context(self, settings: RunbookSettings | None = None) -> DrContext:
        """The `DrContext` a DR command builds, from this world."""
        settings = settings or self.settings
        aws = DrAws(self.clients, self.clock, settings)
        if self.resolvers is not None:
            aws.resolve, aws.find_name_servers = self.resolvers
        return DrContext(
            stack=self.stack,
            aws=aws,
            clock=self.clock,
            settings=settings,
            step_hook=self.step_hook,
            error_metrics=self.error_metrics,
            record_dr_state=self.record_dr_state,
            record_traffic_fence=self.record_traffic_fence,
        )

    def engine(self, output: Callable[[str], None]) -> RunbookEngine:
        """A fresh runner on the world's journal and lock, as a new drctl process would be."""
        return RunbookEngine(
            self.stack.fully_qualified_name, self.store, clock=self.clock, output=output, simulation=self.simulation
        )
