"""The drill scenarios: what fails, when, which failover mode answers it, and the result a sound platform gives.

Each scenario injects the sandbox's faults (the values of
`automation.sandbox.Scenario`, named here as strings so that `drctl --help`
does not load moto) at one of two moments, before the failover or before the
failback switch, and names the result that shows the runbooks behaving: a
refusal is the right outcome when the DR side is not fit to take over.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from automation.errors import DrctlError
from automation.runbooks.failover import CACHE_PART, FailoverMode

# The sandbox's faults (automation.sandbox.Scenario), which are also the scenarios' names.
REGION_FAILURE = "region-failure"
REPLICA_LAG = "replica-lag"
DR_UNHEALTHY = "dr-unhealthy"
CRASH_RESUME = "crash-resume"
CRASH_MID_PROMOTION = "crash-mid-promotion"
FAILBACK_ROLLBACK = "failback-rollback"
SWITCH_TIMEOUT = "switch-timeout"
# Scenarios that are a timeline rather than a fault of their own.
PRIMARY_RETURNS = "primary-returns"
GRACEFUL_IDLE = "graceful-idle"
LATE_START = "late-start"


class DrillResult(StrEnum):
    SUCCEEDED = "succeeded"
    REFUSED = "refused"
    ROLLED_BACK = "rolled-back"
    FAILED = "failed"


DEFAULT_CRASH_STEP = "update_stack_in_dr_region"
"""After the DR region is scaled, the cache failed over and the config written: the most to lose on a restart."""


@dataclass(frozen=True)
class DrillScenario:
    name: str
    summary: str
    mode: FailoverMode
    expected: DrillResult
    before_failover: tuple[str, ...] = ()
    before_switch: tuple[str, ...] = ()
    expected_when_forced: DrillResult | None = None
    """The result with --force --reason, where forcing changes it (only the RPO check can be overridden)."""
    fault_lead_seconds: float = 0
    """How long the fault has lasted (users still served) when the failover starts: its history in the metrics."""
    idle_before_failover_seconds: float = 0
    """The application writes nothing for this long before the failover starts."""
    start_delay_seconds: float = 0
    """How long after the failure is detected the on-call starts drctl."""
    primary_returns_while_failed_over: bool = False
    """The failed region answers again before failback; its application serves whatever reaches it."""

    @property
    def primary_region_fails(self) -> bool:
        return REGION_FAILURE in self.before_failover

    @property
    def expected_not_recovered(self) -> frozenset[str]:
        """Parts an emergency failover is expected to leave not recovered here: with the primary region down,
        the sandbox refuses FailoverGlobalReplicationGroup, as AWS may (catalogue:
        elasticache.global-datastore-failover-with-primary-region-down), and the cache stays a read-only
        secondary until someone detaches it."""
        return frozenset({CACHE_PART}) if self.primary_region_fails else frozenset()

    def expected_result(self, forced: bool) -> DrillResult:
        return self.expected_when_forced if forced and self.expected_when_forced else self.expected


SCENARIOS: dict[str, DrillScenario] = {
    scenario.name: scenario
    for scenario in (
        DrillScenario(
            REGION_FAILURE,
            "the primary region stops answering; emergency failover from the DR region alone, then failback once "
            "it is repaired",
            FailoverMode.EMERGENCY,
            DrillResult.SUCCEEDED,
            before_failover=(REGION_FAILURE,),
        ),
        DrillScenario(
            REPLICA_LAG,
            "the DR replica lags more than the RPO: the failover preflight refuses (with --force --reason it "
            "proceeds and the report shows the RPO missed)",
            FailoverMode.EMERGENCY,
            DrillResult.REFUSED,
            before_failover=(REPLICA_LAG,),
            expected_when_forced=DrillResult.SUCCEEDED,
            fault_lead_seconds=900,
        ),
        DrillScenario(
            DR_UNHEALTHY,
            "the DR region's health check fails before a planned (graceful) failover: the preflight refuses",
            FailoverMode.GRACEFUL,
            DrillResult.REFUSED,
            before_failover=(DR_UNHEALTHY,),
            fault_lead_seconds=60,
        ),
        DrillScenario(
            CRASH_RESUME,
            "the primary region fails and the runner dies mid-failover; a second run resumes from the journal",
            FailoverMode.EMERGENCY,
            DrillResult.SUCCEEDED,
            before_failover=(REGION_FAILURE, CRASH_RESUME),
        ),
        DrillScenario(
            CRASH_MID_PROMOTION,
            "the primary region fails and the runner dies inside the failover's stack update, right after RDS "
            "accepted the promotion: the state still records a replica; the resumed run refreshes the promoted "
            "instance before it updates again, instead of a second promotion RDS would refuse",
            FailoverMode.EMERGENCY,
            DrillResult.SUCCEEDED,
            before_failover=(REGION_FAILURE, CRASH_MID_PROMOTION),
        ),
        DrillScenario(
            PRIMARY_RETURNS,
            "emergency failover out of the primary region; the region returns while still failed over, its "
            "application serving and writing whatever reaches it: the traffic fence keeps every request away, drctl "
            "fences the former writer and stops its compute, then fails back",
            FailoverMode.EMERGENCY,
            DrillResult.SUCCEEDED,
            before_failover=(REGION_FAILURE,),
            primary_returns_while_failed_over=True,
        ),
        DrillScenario(
            GRACEFUL_IDLE,
            "planned switchover after the primary took no writes for 10 minutes (ReplicaLag saws up to ~300 s): "
            "the writer is fenced and the final sync reads the replication slot, not ReplicaLag",
            FailoverMode.GRACEFUL,
            DrillResult.SUCCEEDED,
            idle_before_failover_seconds=600,
        ),
        DrillScenario(
            LATE_START,
            "the primary region stops and the on-call starts the emergency failover 10 minutes later: the data-loss "
            "window is the lag when the primary stopped (seconds), not the time since",
            FailoverMode.EMERGENCY,
            DrillResult.SUCCEEDED,
            before_failover=(REGION_FAILURE,),
            start_delay_seconds=600,
        ),
        DrillScenario(
            SWITCH_TIMEOUT,
            "after a region failure and repair, the failback switch's stack update runs past its step timeout: the "
            "update is cancelled, the stack is free again before anything else updates it, and the switch rolls back",
            FailoverMode.EMERGENCY,
            DrillResult.ROLLED_BACK,
            before_failover=(REGION_FAILURE,),
            before_switch=(SWITCH_TIMEOUT,),
        ),
        DrillScenario(
            FAILBACK_ROLLBACK,
            "after a region failure and repair, the primary answers 20% of requests with 5xx once the failback "
            "switch moved traffic: the switch rolls back to the DR region",
            FailoverMode.EMERGENCY,
            DrillResult.ROLLED_BACK,
            before_failover=(REGION_FAILURE,),
            before_switch=(FAILBACK_ROLLBACK,),
        ),
    )
}
DEFAULT_SCENARIO = REGION_FAILURE
ALL = "all"


def scenario_named(name: str) -> DrillScenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise DrctlError(f"unknown drill scenario {name!r}", hint=f"one of: {', '.join(SCENARIOS)}, or {ALL}") from None
