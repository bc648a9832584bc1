"""How long the AWS operations a DR transition waits on take, and how far replicas lag.

Two tables, each entry with typical and worst-case seconds and the source of
the figure (an AWS document where one states it; otherwise marked as our
estimate and why). `drctl plan` builds its RTO budget and RPO exposure from
them; the offline sandbox uses `latency()` as its latency model, so a drill and
a plan never disagree about how long a step takes.

Figures that depend on the stack's config (health-check interval and
threshold, DNS TTL, the RPO the runbook enforces) are computed from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from components.config import PlatformConfig


class Op(StrEnum):
    """Operations a transition waits on."""

    HEALTH_CHECK_DETECTION = "route53.health-check-detection"
    DNS_CACHE_EXPIRY = "dns.cache-expiry"
    RECORD_PROPAGATION = "route53.record-propagation"
    READINESS_CHECKS = "drctl.readiness-checks"
    STACK_UPDATE_OVERHEAD = "pulumi.stack-update-overhead"
    RDS_PROMOTE_REPLICA = "rds.promote-read-replica"
    RDS_CREATE_CROSS_REGION_REPLICA = "rds.create-cross-region-replica"
    RDS_READ_ONLY_SWITCH = "rds.read-only-switch"
    RDS_FINAL_SYNC = "rds.final-sync"
    NODE_GROUP_SCALE_UP = "eks.node-group-scale-up"
    GLOBAL_DATASTORE_FAILOVER = "elasticache.global-datastore-failover"
    VERIFY_SERVICES = "drctl.verify-services"
    RDS_REBOOT = "rds.reboot"
    RDS_SNAPSHOT = "rds.create-snapshot"
    NODE_GROUP_UPDATE = "eks.node-group-update"
    TRAFFIC_FENCE_FLIP = "route53.traffic-fence-flip"
    S3_BATCH_REPLICATION = "s3.batch-replication-job"


@dataclass(frozen=True)
class Timing:
    operation: Op
    typical_seconds: float
    worst_seconds: float
    source: str


# Fixed figures. The comment above each says where the numbers come from.
TIMINGS: Mapping[Op, Timing] = {
    # "Changes generally propagate to all Route 53 name servers within 60 seconds."
    Op.RECORD_PROPAGATION: Timing(
        Op.RECORD_PROPAGATION,
        30,
        60,
        "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/resource-record-sets-editing.html",
    ),
    # Our estimate: a handful of read-only API calls (replica lag metric, DR
    # health checks, node group status) in the DR region.
    Op.READINESS_CHECKS: Timing(Op.READINESS_CHECKS, 20, 60, "estimate: drctl readiness checks, DR-region API reads"),
    # Our estimate: engine and provider plugin start, program run, targeted
    # diff of the DR region's resources before the first resource operation.
    Op.STACK_UPDATE_OVERHEAD: Timing(
        Op.STACK_UPDATE_OVERHEAD, 60, 180, "estimate: Pulumi engine start + program run + targeted diff"
    ),
    # "The promotion process can take several minutes or longer to complete,
    # depending on the size of the read replica." PostgreSQL may need a second
    # update to apply backup settings after promotion (terraform-provider-aws
    # #4419); that one does not block writes and is left out of the RTO.
    Op.RDS_PROMOTE_REPLICA: Timing(
        Op.RDS_PROMOTE_REPLICA,
        300,
        900,
        "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.Promote.html",
    ),
    # Creating a cross-region replica copies a snapshot of the whole database
    # across regions: the DR plan budgets the sync at 2-4 hours.
    Op.RDS_CREATE_CROSS_REGION_REPLICA: Timing(
        Op.RDS_CREATE_CROSS_REGION_REPLICA,
        2 * 3600,
        4 * 3600,
        "DR plan, failback step 1_sync_data (2-4 hours); "
        "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ReadRepl.XRgn.html",
    ),
    # default_transaction_read_only is a dynamic parameter: applied without a
    # reboot once the parameter group change is in sync (our estimate).
    Op.RDS_READ_ONLY_SWITCH: Timing(
        Op.RDS_READ_ONLY_SWITCH,
        30,
        120,
        "estimate: dynamic parameter apply; "
        "https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_WorkingWithParamGroups.html",
    ),
    # Waiting for the replica to replay the last writes before the switch.
    Op.RDS_FINAL_SYNC: Timing(
        Op.RDS_FINAL_SYNC,
        10,
        15 * 60,
        "DR plan, failback step 3_final_sync (15 minutes worst case); ReplicaLag metric",
    ),
    # A cold node: EC2 launch, OS boot, bootstrap, kubelet registration and
    # Ready. Warm pools exist precisely because this takes minutes; public
    # measurements put a cold managed-node-group scale-out at 2-5 minutes.
    Op.NODE_GROUP_SCALE_UP: Timing(
        Op.NODE_GROUP_SCALE_UP,
        180,
        300,
        "https://docs.aws.amazon.com/eks/latest/userguide/warm-pools-managed-node-groups.html (cold start); "
        "estimate 2-5 min",
    ),
    # AWS's DR workshop gives Global Datastore an RTO of about one minute.
    Op.GLOBAL_DATASTORE_FAILOVER: Timing(
        Op.GLOBAL_DATASTORE_FAILOVER,
        60,
        180,
        "https://disaster-recovery.workshop.aws/en/services/databases/elasticache/global-datastore.html",
    ),
    # Our estimate: the runbook's smoke tests against the DR endpoints.
    Op.VERIFY_SERVICES: Timing(Op.VERIFY_SERVICES, 60, 120, "estimate: drctl service verification"),
    # Our estimate: a reboot without failover of a Multi-AZ instance ends every
    # session at once and serves again within a minute or two.
    Op.RDS_REBOOT: Timing(
        Op.RDS_REBOOT,
        60,
        180,
        "estimate; https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RebootInstance.html",
    ),
    # Our estimate for a 100 GB instance: the first manual snapshot copies every
    # block (later ones are incremental).
    Op.RDS_SNAPSHOT: Timing(
        Op.RDS_SNAPSHOT,
        600,
        3600,
        "estimate; https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_CreateSnapshot.html",
    ),
    # Our estimate: a scaling-only UpdateNodegroupConfig ends once EKS has
    # changed the Auto Scaling group; the nodes come later (NODE_GROUP_SCALE_UP).
    Op.NODE_GROUP_UPDATE: Timing(Op.NODE_GROUP_UPDATE, 30, 120, "estimate: EKS node group update (scaling only)"),
    # Our estimate, from drctl's write of the DR state authority: the fence
    # publisher's next run (Scheduler: within the next minute), that minute's
    # end, then Route53's checkers read the alarm's data stream.
    Op.TRAFFIC_FENCE_FLIP: Timing(
        Op.TRAFFIC_FENCE_FLIP,
        90,
        180,
        "estimate; https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/health-checks-types.html",
    ),
    # Our estimate: manifest generation from the bucket, then a few hundred
    # objects a second; millions of objects take hours.
    Op.S3_BATCH_REPLICATION: Timing(
        Op.S3_BATCH_REPLICATION,
        300,
        4 * 3600,
        "estimate; https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-batch-replication-batch.html",
    ),
}

_HEALTH_CHECK_SOURCE = (
    "https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/dns-failover-determining-health-of-endpoints.html"
)
# An HTTP(S) health checker waits 4 s for the TCP connection and 2 s for the
# status code before it counts a check as failed (same document).
_HEALTH_CHECK_TIMEOUT_SECONDS = 6


def timing(operation: Op | str, cfg: PlatformConfig | None = None) -> Timing:
    """The figures for one operation; config-dependent ones need `cfg`."""
    operation = Op(operation)
    if operation is Op.HEALTH_CHECK_DETECTION:
        _require(cfg, operation)
        interval = cfg.health_check_interval_seconds
        threshold = cfg.health_check_failure_threshold
        # `threshold` consecutive failures, one per interval; at worst the
        # outage starts just after a check and each failure waits for the
        # connection timeout. Checkers do not coordinate, so the aggregate
        # (unhealthy once <= 18% of checkers report healthy) lands in between.
        return Timing(
            operation,
            interval * threshold,
            interval * (threshold + 1) + _HEALTH_CHECK_TIMEOUT_SECONDS,
            f"{_HEALTH_CHECK_SOURCE} (interval {interval}s x failure threshold {threshold})",
        )
    if operation is Op.DNS_CACHE_EXPIRY:
        _require(cfg, operation)
        # Resolvers may cache an answer for its TTL (RFC 1035 section 3.2.1);
        # on average a client is half a TTL from expiry. Clients that ignore
        # TTLs (some JVM settings) are outside any budget.
        return Timing(
            operation,
            cfg.dns_ttl_seconds / 2,
            cfg.dns_ttl_seconds,
            f"RFC 1035 section 3.2.1 (TTL {cfg.dns_ttl_seconds}s from dnsTtlSeconds)",
        )
    return TIMINGS[operation]


def latency(operation: Op | str, cfg: PlatformConfig | None = None, *, worst: bool = False) -> float:
    """Seconds one operation takes: the sandbox's latency model and the plan's budget."""
    found = timing(operation, cfg)
    return found.worst_seconds if worst else found.typical_seconds


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
