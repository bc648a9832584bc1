"""Readings of DR readiness from AWS, one function per concern.

Each reader returns a `Reading`: a status, the measured value, a one-line
detail for people and structured facts for machines. A reader never raises for
an unreachable region (that is a reading too: `unreachable`), nor for a
missing resource (`failing`) or a refused call (`unknown`), so `drctl status`
can show every region and a preflight can decide on all readings at once.
Identifiers come from the stack outputs (see README, "Stack outputs").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from botocore.exceptions import ClientError

from automation.aws.clients import AwsClients, RegionUnreachableError, reaching
from automation.aws.waiting import SYSTEM_CLOCK, Clock

WRITER = "writer"
REPLICA = "replica"

# RDS statuses in which a replica still replicates and a writer still serves.
_SERVING_STATUSES = frozenset(
    {
        "available",
        "backing-up",
        "modifying",
        "maintenance",
        "configuring-enhanced-monitoring",
        "configuring-log-exports",
        "storage-optimization",
        "upgrading",
    }
)
# Route53 itself treats an endpoint as healthy while more than 18% of its checkers say so.
_ROUTE53_HEALTHY_FRACTION = 0.18
# S3 Replication Time Control replicates 99.99% of objects within 15 minutes.
_S3_RTC_THRESHOLD_SECONDS = 900


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    FAILING = "failing"
    UNREACHABLE = "unreachable"
    UNKNOWN = "unknown"


_SEVERITY = (Status.OK, Status.UNKNOWN, Status.WARNING, Status.UNREACHABLE, Status.FAILING)


def worst(statuses: Iterable[Status]) -> Status:
    """The most severe of several statuses (ok when there are none)."""
    return max(statuses, key=_SEVERITY.index, default=Status.OK)


@dataclass(frozen=True)
class Reading:
    check: str
    region: str
    subject: str
    status: Status
    value: float | str | None
    unit: str
    detail: str
    facts: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (`drctl status --json`, run reports)."""
        return _jsonable(asdict(self))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _not_found(code: str) -> bool:
    return "NotFound" in code or code.startswith("NoSuch")


def _guarded(check: str, region: str, subject: str, api_region: str, measure: Callable[[], Reading]) -> Reading:
    """Run one reader; an unreachable region, a missing resource or a refused call becomes a reading."""
    try:
        with reaching(api_region):
            return measure()
    except RegionUnreachableError as error:
        return Reading(check, region, subject, Status.UNREACHABLE, None, "", str(error))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "")
        status = Status.FAILING if _not_found(code) else Status.UNKNOWN
        return Reading(check, region, subject, status, None, "", f"{code}: {message}")


def _classify(value: float, warning_above: float, failing_above: float) -> Status:
    if value > failing_above:
        return Status.FAILING
    if value > warning_above:
        return Status.WARNING
    return Status.OK


# --- databases -------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseInstance:
    """What `DescribeDBInstances` says about one instance: the one place a database's role is read.

    The role is taken from the API as it answers. Against moto, whose
    `promote_read_replica` leaves the source set, the offline sandbox corrects
    moto's own state after a promotion (`automation.sandbox.simulated.correct_promotion`)
    rather than this reader second-guessing AWS.
    """

    identifier: str
    region: str
    arn: str
    status: str
    source: str | None
    """ReadReplicaSourceDBInstanceIdentifier: the writer's ARN for a cross-region replica; None for a writer."""
    replicas: tuple[str, ...]
    replication_status: str | None
    """The `read replication` StatusInfo of a replica (replicating, error, stopped, terminated)."""
    replication_normal: bool
    replication_message: str | None
    parameter_groups: Mapping[str, str]
    """Parameter group name -> ParameterApplyStatus (in-sync, applying, pending-reboot)."""
    backup_retention_days: int
    latest_restorable_time: datetime | None
    master_user_secret_arn: str | None = None
    """The RDS-managed master secret (`manage_master_user_password`); a promoted replica gets its own."""

    @property
    def role(self) -> str:
        return REPLICA if self.source else WRITER

    @property
    def serving(self) -> bool:
        return self.status in _SERVING_STATUSES

    @property
    def standalone_writer(self) -> bool:
        """Promotion finished: no longer a replica and available for writes."""
        return self.role == WRITER and self.status == "available"


def describe_database(clients: AwsClients, region: str, identifier: str) -> DatabaseInstance:
    """Raises `ClientError` (DBInstanceNotFound) or, outside `reaching`, botocore connection errors."""
    described = clients.client("rds", region).describe_db_instances(DBInstanceIdentifier=identifier)
    instance = described["DBInstances"][0]
    replication = next((s for s in instance.get("StatusInfos", []) if s.get("StatusType") == "read replication"), {})
    return DatabaseInstance(
        identifier=instance["DBInstanceIdentifier"],
        region=region,
        arn=instance["DBInstanceArn"],
        status=instance["DBInstanceStatus"],
        source=instance.get("ReadReplicaSourceDBInstanceIdentifier") or None,
        replicas=tuple(instance.get("ReadReplicaDBInstanceIdentifiers", [])),
        replication_status=replication.get("Status"),
        replication_normal=replication.get("Normal", True),
        replication_message=replication.get("Message"),
        parameter_groups={
            group["DBParameterGroupName"]: group.get("ParameterApplyStatus", "")
            for group in instance.get("DBParameterGroups", [])
        },
        backup_retention_days=instance.get("BackupRetentionPeriod", 0),
        latest_restorable_time=instance.get("LatestRestorableTime"),
        master_user_secret_arn=(instance.get("MasterUserSecret") or {}).get("SecretArn"),
    )


def database_role(
    clients: AwsClients, region: str, identifier: str, *, expected_role: str, expected_source: str | None = None
) -> Reading:
    """Is the instance the writer, or a replica of the expected writer? `value` is the role."""

    def measure() -> Reading:
        instance = describe_database(clients, region, identifier)
        facts = {"role": instance.role, "source": instance.source, "instanceStatus": instance.status}
        describe = f"{instance.role}" + (f" of {instance.source}" if instance.source else "")
        if instance.role != expected_role:
            status, detail = Status.FAILING, f"is a {describe}, expected a {expected_role}"
        elif expected_source and instance.source != expected_source:
            status, detail = Status.FAILING, f"is a {describe}, expected a replica of {expected_source}"
        elif not instance.serving:
            status, detail = Status.FAILING, f"is a {describe} in status {instance.status}"
        elif instance.status != "available":
            status, detail = Status.WARNING, f"is a {describe} in status {instance.status}"
        else:
            status, detail = Status.OK, f"is an available {describe}"
        return Reading("database-role", region, identifier, status, instance.role, "", detail, facts)

    return _guarded("database-role", region, identifier, region, measure)


@dataclass(frozen=True)
class LagSample:
    seconds: float
    at: datetime


def replica_lag_samples(
    clients: AwsClients, region: str, identifier: str, *, since: datetime, until: datetime
) -> list[LagSample]:
    """Per-minute maxima of `AWS/RDS ReplicaLag`, oldest first (-1 means replication is not running)."""
    response = clients.client("cloudwatch", region).get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName="ReplicaLag",
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": identifier}],
        StartTime=since,
        EndTime=until,
        Period=60,
        Statistics=["Maximum"],
    )
    samples = [LagSample(point["Maximum"], point["Timestamp"]) for point in response["Datapoints"]]
    return sorted(samples, key=lambda sample: sample.at)


def replica_lag(
    clients: AwsClients,
    region: str,
    identifier: str,
    *,
    rpo_seconds: int,
    warning_seconds: int,
    window: timedelta = timedelta(minutes=5),
    clock: Clock = SYSTEM_CLOCK,
) -> Reading:
    """The worst ReplicaLag of the replica over `window`, against the RPO (failing) and warning threshold."""

    def measure() -> Reading:
        instance = describe_database(clients, region, identifier)
        facts: dict[str, Any] = {"source": instance.source, "instanceStatus": instance.status}

        def reading(status: Status, value: float | None, detail: str) -> Reading:
            return Reading("replica-lag", region, identifier, status, value, "s", detail, facts)

        if instance.role != REPLICA:
            return reading(Status.FAILING, None, "is not a replica: nothing replicates into it")
        if not instance.replication_normal:
            return reading(
                Status.FAILING, None, f"replication {instance.replication_status}: {instance.replication_message}"
            )
        if not instance.serving:
            return reading(Status.FAILING, None, f"replica is in status {instance.status}")
        now = clock.now()
        samples = replica_lag_samples(clients, region, identifier, since=now - window, until=now)
        if not samples:
            return reading(Status.UNKNOWN, None, f"no ReplicaLag datapoints in the last {window}")
        facts.update(latestSeconds=samples[-1].seconds, latestAt=samples[-1].at, rpoSeconds=rpo_seconds)
        highest = max(sample.seconds for sample in samples)
        if min(sample.seconds for sample in samples) < 0:
            return reading(Status.FAILING, None, "ReplicaLag is -1: replication is not running")
        status = _classify(highest, warning_seconds, rpo_seconds)
        return reading(status, highest, f"lag up to {highest:g}s over the last {window} (RPO {rpo_seconds}s)")

    return _guarded("replica-lag", region, identifier, region, measure)


def point_in_time_recovery(
    clients: AwsClients, region: str, identifier: str, *, rpo_seconds: int, clock: Clock = SYSTEM_CLOCK
) -> Reading:
    """How far behind now the latest restorable time of the writer is (the continuous backup)."""

    def measure() -> Reading:
        instance = describe_database(clients, region, identifier)
        facts: dict[str, Any] = {
            "backupRetentionDays": instance.backup_retention_days,
            "latestRestorableTime": instance.latest_restorable_time,
        }
        windows = clients.client("rds", region).describe_db_instance_automated_backups(DBInstanceIdentifier=identifier)
        for backup in windows.get("DBInstanceAutomatedBackups", []):
            earliest = backup.get("RestoreWindow", {}).get("EarliestTime")
            if earliest is not None:
                facts["earliestRestorableTime"] = earliest
        if instance.backup_retention_days == 0:
            return Reading("pitr", region, identifier, Status.FAILING, None, "s", "automated backups are off", facts)
        if instance.latest_restorable_time is None:
            return Reading("pitr", region, identifier, Status.UNKNOWN, None, "s", "no latest restorable time", facts)
        age = (clock.now() - instance.latest_restorable_time).total_seconds()
        status = _classify(age, rpo_seconds, 2 * rpo_seconds)
        detail = f"restorable to {age:.0f}s ago; backups kept {instance.backup_retention_days} days"
        return Reading("pitr", region, identifier, status, age, "s", detail, facts)

    return _guarded("pitr", region, identifier, region, measure)


# --- backups ---------------------------------------------------------------------


def recovery_point_age(
    clients: AwsClients,
    region: str,
    vault_name: str,
    *,
    resource_arn: str | None = None,
    interval: timedelta = timedelta(days=1),
    grace: timedelta = timedelta(hours=3),
    clock: Clock = SYSTEM_CLOCK,
) -> Reading:
    """Age of the newest completed recovery point in the vault against the backup schedule.

    Warning once a scheduled backup is overdue by more than `grace` (the plan's
    start and completion windows), failing once a second one is missed.
    """

    def measure() -> Reading:
        now = clock.now()
        look_back = 2 * interval + grace
        query: dict[str, Any] = {"BackupVaultName": vault_name, "ByCreatedAfter": now - look_back}
        if resource_arn:
            query["ByResourceArn"] = resource_arn
        pages = clients.client("backup", region).get_paginator("list_recovery_points_by_backup_vault").paginate(**query)
        points = [point for page in pages for point in page["RecoveryPoints"]]
        completed = [p for p in points if p.get("Status") in ("COMPLETED", "AVAILABLE")]
        troubled = sorted({p.get("Status", "") for p in points} & {"PARTIAL", "STOPPED"})
        facts: dict[str, Any] = {"recentRecoveryPoints": len(points), "troubledStatuses": troubled}
        if not completed:
            detail = f"no completed recovery point in the last {look_back}"
            return Reading("backup", region, vault_name, Status.FAILING, None, "s", detail, facts)
        newest = max(completed, key=lambda p: p.get("CompletionDate") or p["CreationDate"])
        finished = newest.get("CompletionDate") or newest["CreationDate"]
        age = (now - finished).total_seconds()
        facts.update(recoveryPointArn=newest["RecoveryPointArn"], completedAt=finished)
        status = _classify(age, (interval + grace).total_seconds(), look_back.total_seconds())
        detail = f"newest completed recovery point is {timedelta(seconds=round(age))} old"
        if troubled:
            status = worst((status, Status.WARNING))
            detail += f"; recent recovery points in status {', '.join(troubled)}"
        return Reading("backup", region, vault_name, status, age, "s", detail, facts)

    return _guarded("backup", region, vault_name, region, measure)


# --- traffic ---------------------------------------------------------------------


def health_check(clients: AwsClients, region: str, health_check_id: str) -> Reading:
    """Fraction of Route53 checkers that find the region's endpoint healthy (API served from us-east-1)."""

    def measure() -> Reading:
        response = clients.client("route53", region).get_health_check_status(HealthCheckId=health_check_id)
        observations = response["HealthCheckObservations"]
        if not observations:
            return Reading("health-check", region, health_check_id, Status.UNKNOWN, None, "ratio", "no observations")
        healthy = sum(1 for o in observations if o["StatusReport"]["Status"].startswith("Success"))
        fraction = healthy / len(observations)
        if fraction <= _ROUTE53_HEALTHY_FRACTION:
            status = Status.FAILING
        elif fraction < 2 / 3:
            status = Status.WARNING
        else:
            status = Status.OK
        failures = sorted({o["StatusReport"]["Status"] for o in observations} - {""})
        detail = f"{healthy}/{len(observations)} checkers report healthy"
        facts = {"healthy": healthy, "checkers": len(observations), "reports": failures[:3]}
        return Reading("health-check", region, health_check_id, status, fraction, "ratio", detail, facts)

    return _guarded("health-check", region, health_check_id, AwsClients.api_region("route53", region), measure)


@dataclass(frozen=True)
class MetricRef:
    """One CloudWatch metric, summed (or another statistic) over a window."""

    namespace: str
    name: str
    dimensions: Mapping[str, str]
    statistic: str = "Sum"

    def __post_init__(self) -> None:
        # Totals over a window combine per-period values, which is only meaningful for these two.
        if self.statistic not in ("Sum", "Maximum"):
            raise ValueError(f"metric {self.name}: statistic must be Sum or Maximum, got {self.statistic!r}")


def load_balancer_metrics(load_balancer: str) -> tuple[MetricRef, MetricRef]:
    """5xx responses from targets and all requests of an ALB (`app/<name>/<id>`, the ARN's suffix)."""
    dimensions = {"LoadBalancer": load_balancer}
    return (
        MetricRef("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", dimensions),
        MetricRef("AWS/ApplicationELB", "RequestCount", dimensions),
    )


def _metric_totals(
    clients: AwsClients, region: str, metrics: Mapping[str, MetricRef], *, window: timedelta, clock: Clock
) -> dict[str, float | None]:
    """Each metric's statistic over the whole window (one period), None when it has no datapoints."""
    now = clock.now()
    period = max(60, int(window.total_seconds()) // 60 * 60)
    queries = [
        {
            "Id": query_id,
            "MetricStat": {
                "Metric": {
                    "Namespace": metric.namespace,
                    "MetricName": metric.name,
                    "Dimensions": [{"Name": k, "Value": v} for k, v in metric.dimensions.items()],
                },
                "Period": period,
                "Stat": metric.statistic,
            },
        }
        for query_id, metric in metrics.items()
    ]
    response = clients.client("cloudwatch", region).get_metric_data(
        MetricDataQueries=queries, StartTime=now - window, EndTime=now
    )
    totals: dict[str, float | None] = dict.fromkeys(metrics)
    for result in response["MetricDataResults"]:
        if result["Values"]:
            combine = max if metrics[result["Id"]].statistic == "Maximum" else sum
            totals[result["Id"]] = float(combine(result["Values"]))
    return totals


def error_rate(
    clients: AwsClients,
    region: str,
    *,
    errors: MetricRef,
    requests: MetricRef,
    threshold: float = 0.05,
    window: timedelta = timedelta(minutes=5),
    clock: Clock = SYSTEM_CLOCK,
) -> Reading:
    """Errors / requests over the window; failing above `threshold` (the failback rollback trigger).

    The ratio of the two sums is what the metric-math expression
    `SUM(errors)/SUM(requests)` over one period gives; it is computed here so the
    same code runs against moto, whose GetMetricData does not evaluate math.
    """
    subject = ",".join(f"{k}={v}" for k, v in errors.dimensions.items()) or errors.name

    def measure() -> Reading:
        totals = _metric_totals(clients, region, {"errors": errors, "requests": requests}, window=window, clock=clock)
        failed, total = totals["errors"] or 0.0, totals["requests"] or 0.0
        facts = {"errors": failed, "requests": total, "windowSeconds": window.total_seconds(), "threshold": threshold}
        if total <= 0:
            detail = f"no {requests.name} in the last {window}: cannot tell the error rate"
            return Reading("error-rate", region, subject, Status.UNKNOWN, None, "ratio", detail, facts)
        ratio = failed / total
        status = _classify(ratio, threshold / 2, threshold)
        detail = f"{ratio:.2%} of {total:g} requests failed over the last {window} (limit {threshold:.0%})"
        return Reading("error-rate", region, subject, status, ratio, "ratio", detail, facts)

    return _guarded("error-rate", region, subject, region, measure)


# --- object storage --------------------------------------------------------------


def s3_replication(
    clients: AwsClients,
    region: str,
    source_bucket: str,
    destination_bucket_arn: str,
    *,
    rpo_seconds: int,
    window: timedelta = timedelta(minutes=15),
    clock: Clock = SYSTEM_CLOCK,
) -> Reading:
    """The source bucket replicates to the destination (enabled rule, RTC) and keeps up (CloudWatch).

    `region` is the source bucket's region: its replication metrics live there.
    """

    def measure() -> Reading:
        s3 = clients.client("s3", region)
        try:
            rules = s3.get_bucket_replication(Bucket=source_bucket)["ReplicationConfiguration"]["Rules"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ReplicationConfigurationNotFoundError":
                raise
            rules = []
        to_destination = [r for r in rules if r.get("Destination", {}).get("Bucket") == destination_bucket_arn]
        enabled = [r for r in to_destination if r.get("Status") == "Enabled"]
        facts: dict[str, Any] = {"destination": destination_bucket_arn, "rules": [r.get("ID") for r in enabled]}
        if not enabled:
            detail = f"no enabled replication rule to {destination_bucket_arn}"
            return Reading("s3-replication", region, source_bucket, Status.FAILING, None, "s", detail, facts)
        with_rtc = [r for r in enabled if r["Destination"].get("ReplicationTime", {}).get("Status") == "Enabled"]
        if not with_rtc:
            detail = "replication enabled without Replication Time Control: no latency bound and no metrics"
            return Reading("s3-replication", region, source_bucket, Status.WARNING, None, "s", detail, facts)

        destination_name = destination_bucket_arn.rsplit(":", 1)[-1]
        metrics = {}
        for index, rule in enumerate(with_rtc):
            dimensions = {"SourceBucket": source_bucket, "DestinationBucket": destination_name, "RuleId": rule["ID"]}
            metrics[f"latency{index}"] = MetricRef("AWS/S3", "ReplicationLatency", dimensions, "Maximum")
            metrics[f"pending{index}"] = MetricRef("AWS/S3", "OperationsPendingReplication", dimensions, "Maximum")
            metrics[f"failed{index}"] = MetricRef("AWS/S3", "OperationsFailedReplication", dimensions)
        totals = _metric_totals(clients, region, metrics, window=window, clock=clock)

        def combined(prefix: str, combine: Callable[[list[float]], float]) -> float | None:
            values = [v for k, v in totals.items() if k.startswith(prefix) and v is not None]
            return combine(values) if values else None

        latency, pending, failed = combined("latency", max), combined("pending", max), combined("failed", sum)
        facts.update(latencySeconds=latency, operationsPending=pending, operationsFailed=failed)
        if failed:
            detail = f"{failed:g} operations failed to replicate in the last {window}"
            return Reading("s3-replication", region, source_bucket, Status.FAILING, latency, "s", detail, facts)
        if latency is None:
            detail = f"rule enabled with RTC; no replication traffic in the last {window}"
            return Reading("s3-replication", region, source_bucket, Status.OK, None, "s", detail, facts)
        status = _classify(latency, rpo_seconds, _S3_RTC_THRESHOLD_SECONDS)
        detail = f"latency up to {latency:g}s, {pending or 0:g} operations pending"
        return Reading("s3-replication", region, source_bucket, status, latency, "s", detail, facts)

    return _guarded("s3-replication", region, source_bucket, region, measure)


# --- cache -----------------------------------------------------------------------


@dataclass(frozen=True)
class GlobalDatastoreMember:
    replication_group_id: str
    region: str
    role: str
    status: str


@dataclass(frozen=True)
class GlobalDatastore:
    global_id: str
    status: str
    members: tuple[GlobalDatastoreMember, ...]

    @property
    def primary(self) -> GlobalDatastoreMember | None:
        return next((m for m in self.members if m.role.upper() == "PRIMARY"), None)


def describe_global_datastore(clients: AwsClients, region: str, global_id: str) -> GlobalDatastore:
    """Read through `region`'s ElastiCache endpoint (any member region answers for the whole datastore)."""
    response = clients.client("elasticache", region).describe_global_replication_groups(
        GlobalReplicationGroupId=global_id, ShowMemberInfo=True
    )
    group = response["GlobalReplicationGroups"][0]
    members = tuple(
        GlobalDatastoreMember(m["ReplicationGroupId"], m["ReplicationGroupRegion"], m["Role"], m.get("Status", ""))
        for m in group.get("Members", [])
    )
    return GlobalDatastore(group["GlobalReplicationGroupId"], group["Status"], members)


def global_datastore(clients: AwsClients, region: str, global_id: str, *, expected_primary_region: str) -> Reading:
    """Status of the global datastore and whether its primary is in the active region. `value`: primary region."""

    def measure() -> Reading:
        datastore = describe_global_datastore(clients, region, global_id)
        primary = datastore.primary
        primary_region = primary.region if primary else None
        facts = {
            "status": datastore.status,
            "primaryRegion": primary_region,
            "members": {
                m.region: {"group": m.replication_group_id, "role": m.role, "status": m.status}
                for m in datastore.members
            },
        }
        detached = [m.region for m in datastore.members if m.status != "associated"]
        if primary_region != expected_primary_region:
            status, detail = Status.FAILING, f"primary is in {primary_region}, expected {expected_primary_region}"
        elif datastore.status != "available":
            status, detail = Status.WARNING, f"datastore is {datastore.status} (primary in {primary_region})"
        elif detached:
            status, detail = Status.WARNING, f"members not associated in {', '.join(detached)}"
        else:
            status, detail = Status.OK, f"available, primary in {primary_region}"
        return Reading("global-datastore", region, global_id, status, primary_region, "", detail, facts)

    return _guarded("global-datastore", region, global_id, region, measure)


# --- compute ---------------------------------------------------------------------


@dataclass(frozen=True)
class NodeGroupState:
    cluster: str
    name: str
    status: str
    min_size: int
    desired_size: int
    max_size: int
    issues: tuple[str, ...]


def describe_node_group(clients: AwsClients, region: str, cluster: str, node_group: str) -> NodeGroupState:
    group = clients.client("eks", region).describe_nodegroup(clusterName=cluster, nodegroupName=node_group)["nodegroup"]
    scaling = group["scalingConfig"]
    issues = tuple(f"{i.get('code')}: {i.get('message')}" for i in group.get("health", {}).get("issues", []))
    return NodeGroupState(
        cluster, node_group, group["status"], scaling["minSize"], scaling["desiredSize"], scaling["maxSize"], issues
    )


def node_group(
    clients: AwsClients, region: str, cluster: str, node_group_name: str, *, expected_desired: int | None = None
) -> Reading:
    """The node group's status and desired size, against the size the DR state calls for."""
    subject = f"{cluster}/{node_group_name}"

    def measure() -> Reading:
        state = describe_node_group(clients, region, cluster, node_group_name)
        facts = {"status": state.status, "min": state.min_size, "desired": state.desired_size, "max": state.max_size}
        sizes = f"{state.min_size}/{state.desired_size}/{state.max_size} (min/desired/max)"
        if state.status in ("CREATE_FAILED", "DELETE_FAILED", "DELETING", "DEGRADED"):
            status, detail = Status.FAILING, f"{state.status} {sizes}: {'; '.join(state.issues) or 'no detail'}"
        elif expected_desired is not None and state.desired_size < expected_desired:
            status, detail = Status.WARNING, f"{state.status} {sizes}, below the expected {expected_desired}"
        elif state.status != "ACTIVE":
            status, detail = Status.WARNING, f"{state.status} {sizes}"
        else:
            status, detail = Status.OK, f"ACTIVE {sizes}"
        return Reading("node-group", region, subject, status, state.desired_size, "nodes", detail, facts)

    return _guarded("node-group", region, subject, region, measure)
