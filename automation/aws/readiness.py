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
# Route53 itself treats an endpoint as healthy while more than 18% of its checkers say so
# (catalogue: route53.endpoint-health-2xx-3xx-and-18-percent).
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


IN_EFFECT = frozenset({"in-sync", "applying", ""})
"""Parameter group statuses that need nothing: applied, or being applied without a restart."""


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
        # catalogue: rds.parameter-apply-status
        waiting = {group: applied for group, applied in instance.parameter_groups.items() if applied not in IN_EFFECT}
        if waiting and status is not Status.FAILING:
            broken = any(applied != "pending-reboot" for applied in waiting.values())
            status = Status.FAILING if broken else Status.WARNING
            detail += "; parameter group " + ", ".join(f"{group} {applied}" for group, applied in waiting.items())
            if not broken:
                detail += " (its static changes apply at the next restart: a promotion or the write fence's reboot)"
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
    return _rds_samples(clients, region, identifier, "ReplicaLag", "Maximum", since, until)


def _rds_samples(
    clients: AwsClients, region: str, identifier: str, metric: str, statistic: str, since: datetime, until: datetime
) -> list[LagSample]:
    """One `AWS/RDS` metric of an instance per 60-s period, oldest first."""
    if (until - since).total_seconds() < 1:  # CloudWatch's times are whole seconds: such a window holds nothing
        return []
    response = clients.client("cloudwatch", region).get_metric_statistics(
        Namespace="AWS/RDS",
        MetricName=metric,
        Dimensions=[{"Name": "DBInstanceIdentifier", "Value": identifier}],
        StartTime=since,
        EndTime=until,
        Period=60,
        Statistics=[statistic],
    )
    samples = [LagSample(point[statistic], point["Timestamp"]) for point in response["Datapoints"]]
    return sorted(samples, key=lambda sample: sample.at)


def replica_lag(
    clients: AwsClients,
    region: str,
    identifier: str,
    *,
    rpo_seconds: int,
    warning_seconds: int,
    window: timedelta = timedelta(minutes=10),
    clock: Clock = SYSTEM_CLOCK,
) -> Reading:
    """Is the replica keeping up? The lowest ReplicaLag of the window, against the RPO and warning threshold.

    ReplicaLag is the time since the replica last replayed a commit (catalogue:
    rds.postgres-replica-lag-is-time-since-last-replay): on an idle source it climbs
    to about 300 s between RDS's own commits (catalogue:
    rds.idle-source-replays-every-few-minutes), so its maximum says nothing about
    data at risk. The minimum over a window longer than that cycle is how close
    the replica came to its source: a replica that keeps up gets back to seconds.
    """

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
        lowest = min(sample.seconds for sample in samples)
        highest = max(sample.seconds for sample in samples)
        facts.update(
            latestSeconds=samples[-1].seconds, latestAt=samples[-1].at, rpoSeconds=rpo_seconds, highestSeconds=highest
        )
        if lowest < 0:
            return reading(Status.FAILING, None, "ReplicaLag is -1: replication is not running")
        status = _classify(lowest, warning_seconds, rpo_seconds)
        detail = (
            f"caught up to within {lowest:g}s over the last {window} (ReplicaLag {lowest:g}-{highest:g}s: the time "
            f"since the last replayed commit; RPO {rpo_seconds}s)"
        )
        return reading(status, lowest, detail)

    return _guarded("replica-lag", region, identifier, region, measure)


@dataclass(frozen=True)
class ReplayStop:
    """When a replica stopped replaying (its source went away) and how far behind it was then."""

    replayed_through: datetime
    """The commit time of the last transaction the replica replayed: later writes are not on it."""
    window_seconds: float
    """ReplicaLag at the first datapoint after replay stopped: the data-loss window, within one period."""
    frozen_since: datetime
    """When a datapoint first showed replay stopped."""


SAMPLE_TOLERANCE_SECONDS = 60.0
"""One CloudWatch period: a per-minute datapoint may have been taken anywhere in its minute."""
FROZEN_TOLERANCE_SECONDS = 5.0
"""Datapoints whose replayed-through times agree this closely show no replay in between (1-s granularity)."""


def replay_pause(samples: list[LagSample]) -> ReplayStop | None:
    """The replica's replay has not moved since the first of the latest datapoints, or None if it still replays.

    Each datapoint says the replica had replayed the commits up to `at - lag`.
    While the source writes, that point moves forward; when the source is gone
    it freezes and ReplicaLag grows by one second a second. The first datapoint
    of the freeze bounds the data-loss window: writes after the replayed point
    and before the source stopped, which the datapoint's lag covers (catalogue:
    rds.postgres-replica-lag-is-time-since-last-replay). An idle source freezes
    the point too, between its periodic commits, and then the first frozen
    datapoint's lag is as low as the replica got: the same rule serves both.
    Negative datapoints (replication not running) are left out.
    """
    points = [(s.at + timedelta(seconds=SAMPLE_TOLERANCE_SECONDS), s.seconds) for s in samples if s.seconds >= 0]
    if len(points) < 2:
        return None
    through = [at - timedelta(seconds=lag) for at, lag in points]
    frozen_at = through[-1]
    start = len(points) - 1
    while start > 0 and abs((through[start - 1] - frozen_at).total_seconds()) <= FROZEN_TOLERANCE_SECONDS:
        start -= 1
    if start == len(points) - 1:
        return None
    return ReplayStop(frozen_at, points[start][1], points[start][0])


def data_loss_window(
    clients: AwsClients,
    region: str,
    identifier: str,
    *,
    rpo_seconds: int,
    replay_interval_seconds: float,
    look_back: timedelta = timedelta(hours=2),
    clock: Clock = SYSTEM_CLOCK,
) -> Reading:
    """The data-loss window of promoting the replica now, from the DR region's metrics alone (emergency).

    If replay has stopped, the window is the lag at the first frozen datapoint,
    however recently it stopped (an idle source's pause gives its low point, an
    outage the lag the replica had then); if it still replays, the latest lag.
    Never the lowest of a window: a replica that fell behind just before the
    outage would pass. ReplicaLag -1 (replication not running) as the latest
    datapoint leaves the window unknown (catalogue:
    rds.replica-lag-minus-one-replication-stopped). `value` is the window in seconds.
    """

    def measure() -> Reading:
        now = clock.now()
        samples = replica_lag_samples(clients, region, identifier, since=now - look_back, until=now)
        facts: dict[str, Any] = {"rpoSeconds": rpo_seconds, "datapoints": len(samples)}
        if not samples:
            detail = f"no ReplicaLag datapoints in the last {look_back}: the data-loss window is unknown"
            return Reading("data-loss-window", region, identifier, Status.UNKNOWN, None, "s", detail, facts)
        if samples[-1].seconds < 0:
            first = len(samples) - 1
            while first > 0 and samples[first - 1].seconds < 0:
                first -= 1
            detail = (
                f"ReplicaLag is -1 since {samples[first].at.isoformat()}: replication is not running, so what the "
                f"replica lacks is unknown (RPO {rpo_seconds}s)"
            )
            return Reading("data-loss-window", region, identifier, Status.UNKNOWN, None, "s", detail, facts)
        pause = replay_pause(samples)
        if pause is not None:
            window = pause.window_seconds
            facts.update(replayedThrough=pause.replayed_through, frozenSince=pause.frozen_since)
            paused = (now - pause.frozen_since).total_seconds()
            cause = (
                "the source stopped"
                if paused >= replay_interval_seconds + SAMPLE_TOLERANCE_SECONDS
                else "an idle source or an outage"
            )
            detail = (
                f"no replay since {pause.frozen_since.isoformat()} ({cause}; last replayed commit of "
                f"{pause.replayed_through.isoformat()}); ReplicaLag then was {window:g}s: writes of at most the last "
                f"{window:g}s before the source stopped are lost (RPO {rpo_seconds}s)"
            )
        else:
            window = samples[-1].seconds
            detail = (
                f"the replica still replays: ReplicaLag {window:g}s at {samples[-1].at.isoformat()} "
                f"(RPO {rpo_seconds}s)"
            )
        status = Status.FAILING if window > rpo_seconds else Status.OK
        return Reading("data-loss-window", region, identifier, status, window, "s", detail, facts)

    return _guarded("data-loss-window", region, identifier, region, measure)


def replication_slot_lag_samples(
    clients: AwsClients, region: str, source_identifier: str, *, since: datetime, until: datetime
) -> list[LagSample]:
    """Per-minute minima of the source's `OldestReplicationSlotLag` (bytes), oldest first."""
    return _rds_samples(clients, region, source_identifier, "OldestReplicationSlotLag", "Minimum", since, until)


def wal_retention(
    clients: AwsClients,
    region: str,
    identifier: str,
    *,
    serves_replicas: bool,
    warning_bytes: float,
    window: timedelta = timedelta(minutes=15),
    clock: Clock = SYSTEM_CLOCK,
) -> Reading:
    """Does a standalone instance hold WAL for a replication slot that no replica reads? `value`: slot lag bytes.

    A slot keeps every WAL segment its consumer has not confirmed, until storage
    is full. A former writer (retained, or left behind by a failover) or a
    rolled-back writer may keep the slot of a replica that is gone: any slot lag
    there, growing TransactionLogsDiskUsage with it, is WAL nobody will read
    (catalogue: rds.inactive-slot-retains-wal). The serving writer's slot lag is
    its replicas' backlog and only warns above `warning_bytes`.
    """

    def measure() -> Reading:
        now = clock.now()
        slot = _rds_samples(clients, region, identifier, "OldestReplicationSlotLag", "Maximum", now - window, now)
        logs = _rds_samples(clients, region, identifier, "TransactionLogsDiskUsage", "Maximum", now - window, now)
        facts: dict[str, Any] = {"servesReplicas": serves_replicas, "warningBytes": warning_bytes}
        if logs:
            facts["transactionLogsBytes"] = logs[-1].seconds
        if not slot:
            detail = f"no OldestReplicationSlotLag datapoint in the last {window}: no replication slot reported"
            return Reading("wal-retention", region, identifier, Status.OK, None, "bytes", detail, facts)
        lag = slot[-1].seconds
        kept = f"a replication slot keeps {lag:g} bytes of WAL" + (
            f" (transaction logs {logs[-1].seconds:g} bytes)" if logs else ""
        )
        if serves_replicas:
            status = Status.WARNING if lag > warning_bytes else Status.OK
            detail = f"{kept}: its replicas' backlog" + (f", above {warning_bytes:g}" if lag > warning_bytes else "")
        else:
            status = Status.WARNING if lag > 0 else Status.OK
            detail = (
                f"{kept} on an instance no replica reads from: it grows until storage is full; drop the slot "
                "(SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active) or stop "
                "the instance"
                if lag > 0
                else "no WAL kept for a replication slot"
            )
        return Reading("wal-retention", region, identifier, status, lag, "bytes", detail, facts)

    return _guarded("wal-retention", region, identifier, region, measure)


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


@dataclass(frozen=True)
class LoadBalancerMetrics:
    """The ALB metrics an error rate needs (catalogue: elb.request-count-excludes-rejected-requests)."""

    target_5xx: MetricRef
    elb_5xx: MetricRef
    elb_503: MetricRef
    requests: MetricRef


def load_balancer_metrics(load_balancer: str) -> LoadBalancerMetrics:
    """5xx from targets and from the ALB itself, its own 503s, and requests of an ALB (`app/<name>/<id>`)."""
    dimensions = {"LoadBalancer": load_balancer}

    def metric(name: str) -> MetricRef:
        return MetricRef("AWS/ApplicationELB", name, dimensions)

    return LoadBalancerMetrics(
        metric("HTTPCode_Target_5XX_Count"),
        metric("HTTPCode_ELB_5XX_Count"),
        metric("HTTPCode_ELB_503_Count"),
        metric("RequestCount"),
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
    metrics: LoadBalancerMetrics,
    threshold: float = 0.05,
    window: timedelta = timedelta(minutes=5),
    clock: Clock = SYSTEM_CLOCK,
) -> Reading:
    """Failed requests / all requests over the window; failing above `threshold` (the failback rollback trigger).

    A request the ALB rejected before choosing a target (no Ready target: it
    answers 503 itself) is in HTTPCode_ELB_5XX_Count and not in RequestCount, so
    failures are target and ELB 5xx, over RequestCount plus the ELB's 503s
    (catalogue: elb.request-count-excludes-rejected-requests). Computed here
    rather than with metric math so the same code runs against moto. No
    datapoint at all is `unknown`: ELB reports nothing without traffic
    (catalogue: elb.metrics-per-60-seconds-only-with-traffic).
    """
    subject = ",".join(f"{k}={v}" for k, v in metrics.requests.dimensions.items()) or metrics.requests.name

    def measure() -> Reading:
        refs = {
            "target5xx": metrics.target_5xx,
            "elb5xx": metrics.elb_5xx,
            "elb503": metrics.elb_503,
            "requests": metrics.requests,
        }
        totals = _metric_totals(clients, region, refs, window=window, clock=clock)
        failed = (totals["target5xx"] or 0.0) + (totals["elb5xx"] or 0.0)
        total = (totals["requests"] or 0.0) + (totals["elb503"] or 0.0)
        facts = {
            "targetErrors": totals["target5xx"],
            "loadBalancerErrors": totals["elb5xx"],
            "rejectedRequests": totals["elb503"],
            "requests": totals["requests"],
            "windowSeconds": window.total_seconds(),
            "threshold": threshold,
        }
        if total <= 0:
            detail = f"no requests reported in the last {window}: cannot tell the error rate"
            return Reading("error-rate", region, subject, Status.UNKNOWN, None, "ratio", detail, facts)
        ratio = min(1.0, failed / total)
        status = _classify(ratio, threshold / 2, threshold)
        detail = (
            f"{ratio:.2%} of {total:g} requests failed over the last {window} ({totals['target5xx'] or 0:g} target "
            f"5xx, {totals['elb5xx'] or 0:g} load balancer 5xx; limit {threshold:.0%})"
        )
        return Reading("error-rate", region, subject, status, ratio, "ratio", detail, facts)

    return _guarded("error-rate", region, subject, region, measure)


def target_health(clients: AwsClients, region: str, target_group_arn: str, *, expected: int = 1) -> Reading:
    """Healthy targets behind the region's load balancer: the application serving, as the ALB itself sees it."""

    def measure() -> Reading:
        described = clients.client("elbv2", region).describe_target_health(TargetGroupArn=target_group_arn)
        states = [d["TargetHealth"]["State"] for d in described["TargetHealthDescriptions"]]
        healthy = states.count("healthy")
        facts = {"healthy": healthy, "targets": len(states), "expected": expected}
        detail = f"{healthy} of {len(states)} targets healthy"
        if healthy == 0:
            status = Status.FAILING
        elif healthy < expected:
            status, detail = Status.WARNING, f"{detail}, expected {expected}"
        else:
            status = Status.OK
        return Reading("target-health", region, target_group_arn, status, healthy, "targets", detail, facts)

    return _guarded("target-health", region, target_group_arn, region, measure)


def ready_nodes(clients: AwsClients, region: str, cluster: str, node_group_name: str) -> int:
    """InService instances of the node group's Auto Scaling group (catalogue: eks.active-is-not-ready)."""
    group = clients.client("eks", region).describe_nodegroup(clusterName=cluster, nodegroupName=node_group_name)
    names = [g["name"] for g in group["nodegroup"].get("resources", {}).get("autoScalingGroups", [])]
    if not names:
        return 0
    described = clients.client("autoscaling", region).describe_auto_scaling_groups(AutoScalingGroupNames=names)
    return sum(
        1
        for asg in described["AutoScalingGroups"]
        for instance in asg.get("Instances", [])
        if instance.get("LifecycleState") == "InService" and instance.get("HealthStatus", "Healthy") == "Healthy"
    )


def traffic_fence(clients: AwsClients, region: str, alarm_name: str) -> Reading:
    """The traffic fence's alarm in the DR region: `raised` (ALARM), `lowered` (OK) or `never raised`."""

    def measure() -> Reading:
        alarms = clients.client("cloudwatch", region).describe_alarms(AlarmNames=[alarm_name])["MetricAlarms"]
        if not alarms:
            detail = f"no alarm {alarm_name}: the stack was not deployed with the traffic fence"
            return Reading("traffic-fence", region, alarm_name, Status.FAILING, None, "", detail)
        state = alarms[0]["StateValue"]
        value = {"ALARM": "raised", "OK": "lowered"}.get(state, "never raised")
        detail = f"fence {value} (alarm {state})"
        return Reading("traffic-fence", region, alarm_name, Status.OK, value, "", detail, {"state": state})

    return _guarded("traffic-fence", region, alarm_name, region, measure)


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

    The rule's metrics exist only with RTC or metrics enabled (catalogue: s3.rtc-and-replication-metrics).

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
