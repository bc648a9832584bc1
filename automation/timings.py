"""How long what a DR transition waits on takes: ONE table for `drctl plan` and the sandbox.

Every duration a runbook, the planner or the offline sandbox charges comes
from here: AWS operations, the Pulumi engine's own time, the runner's restart,
the health checks that detect an outage and the DNS caches that move clients.
Each entry has a typical and a worst-case figure, says whether the figure is
documented (AWS or the tool's documentation states it) or estimated (our
figure, within what the documentation says, or nothing says it), and links the
behaviour catalogue entry that holds the source (`catalogue/*.yaml`) instead
of repeating it. Entries about drctl itself (its reads, its restart) have no
catalogue entry: the basis is in the entry's note.

`drctl plan` builds the RTO floor of a runbook from these figures and its
dependency graph (`automation.runbooks.graph`); the sandbox's latency clock
charges the same figures where AWS would take the time. Figures that depend
on the stack's config (health-check interval and threshold, DNS TTL, the RPO
the runbook enforces) are computed from it.

One definition of RTO everywhere: from the start of the disruption (the
outage, or the write fence of a planned switch) to verified service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from automation import catalogue
from components.config import PlatformConfig


class Op(StrEnum):
    """What a transition waits on."""

    HEALTH_CHECK_DETECTION = "route53.health-check-detection"
    DNS_CACHE_EXPIRY = "dns.cache-expiry"
    RECORD_PROPAGATION = "route53.record-propagation"
    FENCE_ALARM_EVALUATION = "cloudwatch.fence-alarm-evaluation"
    ROUTE53_FOLLOWS_ALARM = "route53.follows-the-alarm"
    READINESS_CHECKS = "drctl.readiness-checks"
    VERIFY_SERVICES = "drctl.verify-services"
    AWS_API_CALL = "aws.api-call"
    PULUMI_CLI_CALL = "pulumi.cli-call"
    PULUMI_PREVIEW = "pulumi.preview"
    STACK_UPDATE_OVERHEAD = "pulumi.stack-update-overhead"
    RUNNER_RESTART = "drctl.runner-restart"
    RDS_PROMOTE_REPLICA = "rds.promote-read-replica"
    RDS_CREATE_CROSS_REGION_REPLICA = "rds.create-cross-region-replica"
    RDS_PARAMETER_APPLY = "rds.parameter-apply"
    RDS_REBOOT = "rds.reboot"
    RDS_FINAL_SYNC = "rds.final-sync"
    RDS_SNAPSHOT = "rds.create-snapshot"
    RDS_MULTI_AZ_CONVERSION = "rds.multi-az-conversion"
    RDS_IDLE_REPLAY_INTERVAL = "rds.idle-replay-interval"
    NODE_GROUP_UPDATE = "eks.node-group-update"
    NODE_GROUP_SCALE_UP = "eks.node-group-scale-up"
    NODE_GROUP_SCALE_DOWN = "eks.node-group-scale-down"
    GLOBAL_DATASTORE_FAILOVER = "elasticache.global-datastore-failover"
    S3_BATCH_REPLICATION = "s3.batch-replication-job"


DOCUMENTED = "documented"
ESTIMATED = "estimated"


@dataclass(frozen=True)
class Timing:
    operation: Op
    typical_seconds: float
    worst_seconds: float
    documented: bool
    """True only where the documentation states the figure; otherwise it is our estimate."""
    catalogue_id: str | None
    """The behaviour catalogue entry with the source; None for drctl's own work (the note says the basis)."""
    note: str

    @property
    def basis(self) -> str:
        return DOCUMENTED if self.documented else ESTIMATED

    @property
    def source(self) -> str:
        """Where the figure comes from: the catalogue entry (id and its source), or the note for drctl's own work."""
        if self.catalogue_id is None:
            return f"{self.basis}: {self.note}"
        entry = catalogue.entry(self.catalogue_id)
        return f"{self.basis}: {self.note} [catalogue {entry.id}: {entry.source}]"

    def to_json(self) -> dict[str, object]:
        return {
            "operation": self.operation.value,
            "typicalSeconds": self.typical_seconds,
            "worstSeconds": self.worst_seconds,
            "basis": self.basis,
            "catalogue": self.catalogue_id,
            "note": self.note,
        }


def _timing(
    operation: Op, typical: float, worst: float, catalogue_id: str | None, note: str, *, documented: bool = False
) -> Timing:
    return Timing(operation, typical, worst, documented, catalogue_id, note)


TIMINGS: Mapping[Op, Timing] = {
    timing.operation: timing
    for timing in (
        _timing(
            Op.RECORD_PROPAGATION,
            30,
            60,
            "route53.record-change-propagation",
            "a record change is INSYNC on every Route53 name server within 60 s",
            documented=True,
        ),
        _timing(
            Op.FENCE_ALARM_EVALUATION,
            60,
            120,
            "route53.fence-flip-time",
            "the fence datapoint's 60-s period ends, then its alarm evaluates it",
        ),
        _timing(
            Op.ROUTE53_FOLLOWS_ALARM,
            30,
            60,
            "route53.fence-flip-time",
            "Route53's health checkers read the alarm's new state",
        ),
        _timing(
            Op.READINESS_CHECKS,
            10,
            30,
            None,
            "a preflight: about 15 AWS API reads and 5 Pulumi CLI reads (aws.api-call, pulumi.cli-call)",
        ),
        _timing(
            Op.VERIFY_SERVICES,
            10,
            30,
            None,
            "a verification: about 10 AWS API reads and 5 Pulumi CLI reads (aws.api-call, pulumi.cli-call)",
        ),
        _timing(
            Op.AWS_API_CALL,
            0.2,
            1,
            None,
            "one AWS API request and its answer from the runner, TLS included",
        ),
        _timing(
            Op.PULUMI_CLI_CALL,
            1,
            3,
            "pulumi-cli.engine-run-time",
            "one `pulumi config` or `pulumi stack output` run: CLI start, backend read",
        ),
        _timing(
            Op.PULUMI_PREVIEW,
            60,
            180,
            "pulumi-cli.engine-run-time",
            "a targeted `pulumi preview` with the policy pack: engine and plugins start, program run, diff",
        ),
        _timing(
            Op.STACK_UPDATE_OVERHEAD,
            60,
            180,
            "pulumi-cli.engine-run-time",
            "a `pulumi up` before its first resource operation: engine and plugins start, program run, diff",
        ),
        _timing(
            Op.RUNNER_RESTART,
            60,
            600,
            None,
            "the on-call (or CI) sees the runner die and reruns the same command",
        ),
        _timing(
            Op.RDS_PROMOTE_REPLICA,
            300,
            900,
            "rds.promotion-is-asynchronous",
            "AWS says several minutes or longer, depending on the replica's size",
        ),
        _timing(
            Op.RDS_CREATE_CROSS_REGION_REPLICA,
            2 * 3600,
            4 * 3600,
            "rds.cross-region-replica-creation-time",
            "snapshot, cross-region copy and restore of the whole database (DR plan: 2-4 hours)",
        ),
        _timing(
            Op.RDS_PARAMETER_APPLY,
            30,
            120,
            "rds.parameter-change-applies-asynchronously",
            "a dynamic parameter is applying, then in-sync",
        ),
        _timing(
            Op.RDS_REBOOT,
            60,
            180,
            "rds.reboot-ends-every-session",
            "a reboot without failover ends every session and serves again",
        ),
        _timing(
            Op.RDS_FINAL_SYNC,
            90,
            15 * 60,
            "rds.fenced-source-slot-lag-reads-zero",
            "the first 60-s OldestReplicationSlotLag period wholly after the fence reads 0 (DR plan: 15 min worst)",
        ),
        _timing(
            Op.RDS_SNAPSHOT,
            600,
            3600,
            "rds.snapshot-creation-is-asynchronous",
            "the first manual snapshot of a 100 GB instance copies every block",
        ),
        _timing(
            Op.RDS_MULTI_AZ_CONVERSION,
            20 * 60,
            60 * 60,
            "rds.multi-az-conversion-without-downtime",
            "a Single-AZ instance becomes Multi-AZ: a standby built from a snapshot of 100 GB",
        ),
        _timing(
            Op.RDS_IDLE_REPLAY_INTERVAL,
            300,
            300,
            "rds.idle-source-replays-every-few-minutes",
            "an idle source still replays something this often",
        ),
        _timing(
            Op.NODE_GROUP_UPDATE,
            30,
            120,
            "eks.node-group-update-is-asynchronous",
            "UPDATING until EKS has changed the Auto Scaling group (scaling only)",
        ),
        _timing(
            Op.NODE_GROUP_SCALE_UP,
            180,
            300,
            "eks.active-is-not-ready",
            "cold nodes boot, join and are Ready, from the scaling request (public measurements: 2-5 min)",
        ),
        _timing(
            Op.NODE_GROUP_SCALE_DOWN,
            60,
            300,
            "eks.node-group-update-is-asynchronous",
            "a node drained and terminated after a scale-down",
        ),
        _timing(
            Op.GLOBAL_DATASTORE_FAILOVER,
            60,
            180,
            "elasticache.global-datastore-failover-needs-available",
            "a Global Datastore failover is modifying for about a minute (AWS DR workshop)",
        ),
        _timing(
            Op.S3_BATCH_REPLICATION,
            240,
            4 * 3600,
            "s3.batch-replication-job",
            "manifest generation, then a few hundred objects a second; millions of objects take hours",
        ),
    )
}

_HEALTH_CHECK_TIMEOUT_SECONDS = 6
"""An HTTPS health checker waits 4 s for the connection and 2 s for the status (catalogue: the same entry)."""


def timing(operation: Op | str, cfg: PlatformConfig | None = None) -> Timing:
    """The figures for one operation; config-dependent ones need `cfg`."""
    operation = Op(operation)
    if operation is Op.HEALTH_CHECK_DETECTION:
        _require(cfg, operation)
        interval = cfg.health_check_interval_seconds
        threshold = cfg.health_check_failure_threshold
        # `threshold` consecutive failures, one per interval; at worst the outage starts just after a check and
        # each failure waits for the connection timeout.
        return _timing(
            operation,
            interval * threshold,
            interval * (threshold + 1) + _HEALTH_CHECK_TIMEOUT_SECONDS,
            "route53.endpoint-health-2xx-3xx-and-18-percent",
            f"healthCheckIntervalSeconds {interval} x healthCheckFailureThreshold {threshold}",
            documented=True,
        )
    if operation is Op.DNS_CACHE_EXPIRY:
        _require(cfg, operation)
        # Every resolver's cached answer has expired one TTL after Route53 changed its answer (half a TTL for
        # the average client); the runbooks wait for the last one. Clients that ignore TTLs are outside any budget.
        return _timing(
            operation,
            cfg.dns_ttl_seconds,
            cfg.dns_ttl_seconds,
            "dns.resolvers-cache-for-the-ttl",
            f"dnsTtlSeconds {cfg.dns_ttl_seconds}: every resolver's cached answer expired",
            documented=True,
        )
    return TIMINGS[operation]


def latency(operation: Op | str, cfg: PlatformConfig | None = None, *, worst: bool = False) -> float:
    """Seconds one operation takes: the sandbox's latency model and the plan's budget."""
    found = timing(operation, cfg)
    return found.worst_seconds if worst else found.typical_seconds


def table(cfg: PlatformConfig) -> list[Timing]:
    """Every entry, config-dependent ones for `cfg`: what reports list as the durations they used."""
    return [timing(operation, cfg) for operation in Op]


def _require(cfg: PlatformConfig | None, operation: Op) -> None:
    if cfg is None:
        raise ValueError(f"{operation.value} depends on the stack config; pass cfg")


# --- replication lag (RPO exposure) ---------------------------------------------


@dataclass(frozen=True)
class ReplicationLag:
    """How much recent data a replication mechanism can lose when its source region is lost."""

    mechanism: str
    data: str
    typical_seconds: float
    bound_seconds: float | None  # None: AWS states no bound
    source: str
    note: str = ""


REPLICATION: Mapping[str, ReplicationLag] = {
    # Asynchronous: AWS gives no bound. The failover runbook refuses to promote
    # while ReplicaLag exceeds rpoSeconds, which makes the RPO the bound.
    "rds-cross-region-replica": ReplicationLag(
        "RDS cross-region read replica (asynchronous)",
        "transactional database",
        5,
        None,
        "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Monitoring.html",
        "no AWS bound; drctl refuses promotion while ReplicaLag exceeds rpoSeconds",
    ),
    # "S3 RTC replicates most objects that you upload to Amazon S3 in seconds,
    # and 99.99 percent of those objects within 15 minutes."
    "s3-replication-time-control": ReplicationLag(
        "S3 cross-region replication with Replication Time Control",
        "object storage (uploads, config)",
        15,
        15 * 60,
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-time-control.html",
        "15-minute bound for 99.99% of objects; no bound for the remaining 0.01%",
    ),
    # Without RTC: "most objects replicate within 15 minutes, but sometimes
    # replication can take a couple of hours"; no bound at all.
    "s3-replication": ReplicationLag(
        "S3 cross-region replication (no Replication Time Control)",
        "object storage (uploads, config)",
        60,
        None,
        "https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication.html",
        "no bound; enable RTC for a 15-minute bound",
    ),
    # AWS DR workshop: RPO "generally less than 1 second".
    "elasticache-global-datastore": ReplicationLag(
        "ElastiCache Global Datastore",
        "cache (sessions, queues)",
        1,
        None,
        "https://disaster-recovery.workshop.aws/en/services/databases/elasticache/global-datastore.html",
        "typically under 1 s; no AWS bound",
    ),
    # "Amazon RDS uploads transaction logs for DB instances to Amazon S3 every
    # 5 minutes": what a restore after corruption (not a region loss) loses.
    "rds-point-in-time-restore": ReplicationLag(
        "RDS point-in-time restore (corruption scenario)",
        "transactional database",
        300,
        300,
        "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_PIT.html",
        "latest restorable time trails by up to 5 minutes",
    ),
}


def replication_lag(mechanism: str, cfg: PlatformConfig) -> ReplicationLag:
    """The lag figures, with the RDS replica bounded by the RPO the runbook enforces."""
    found = REPLICATION[mechanism]
    if mechanism == "rds-cross-region-replica":
        return replace(found, bound_seconds=float(cfg.rpo_seconds))
    return found
