"""CloudWatch alarms in both regions, each notifying the SNS topic of its own region.

Which alarms a region holds is a pure function of the config (`regional_alarms`),
so tests and docs read the same specs the program declares. Thresholds come
from the config (`rpoSeconds`, `replicaLagWarningSeconds`) and from the
operations documents (CPU 80 % warning / 90 % critical, disk 90 % full, the
15-minute S3 Replication Time Control). Every alarm sends both its ALARM and its
OK transition, so a page is always followed by its all-clear.

In `failed-over` the failed primary region keeps exactly its steady-state
alarms, like every other primary-region declaration: neither a targeted nor a
full update has anything to do there. The DR region's alarms follow the state.

Alarms on Route53 health checks live in us-east-1, the only region where
Route53 publishes `HealthCheckStatus` (see `health_check_alarms`).

Each region also watches its own monitoring stack from outside the cluster: an
alarm on the heartbeat topic's published-message count pages when the
Watchdog heartbeats Alertmanager sends there stop (a dead man's switch).

And its AWS Backup restore tests (`components/restore_testing.py`): one alarm
when a test fails, one when none has passed for a day and a quarter.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

import pulumi
import pulumi_aws as aws

from components.alert_rules import lag_thresholds
from components.config import PlatformConfig
from components.database import current_is_replica
from components.functions.restore_validation import FAILED_METRIC, PASSED_METRIC, PLAN_DIMENSION
from components.naming import (
    backup_vault_name,
    cache_group_id,
    cache_member_cluster_ids,
    data_bucket_name,
    db_identifier,
    heartbeat_topic_name,
    physical_name,
    replication_rule_id,
    restore_testing_plan_name,
)
from components.restore_testing import METRIC_NAMESPACE as RESTORE_TEST_NAMESPACE
from components.storage import REPLICATION_MINUTES, replication_source_role

ROUTE53_METRICS_REGION = "us-east-1"
"""Route53 publishes health-check metrics to CloudWatch in this region only.

catalogue: cloudwatch.route53-metrics-in-us-east-1
"""

WARNING = "warning"
CRITICAL = "critical"
# The platform runbook's CPU thresholds (reference: alert-rules.md).
CPU_PERCENT = {WARNING: 80, CRITICAL: 90}
CPU_MINUTES = 5
# The DR plan's disk_space alert: usage above 90 %, i.e. less than 10 % free.
FREE_STORAGE_FRACTION = 0.10
# S3 Replication Time Control replicates 99.99 % of objects within this time.
S3_RTC_SECONDS = REPLICATION_MINUTES * 60
GIB = 1024**3
# SNS publishes topic metrics every 5 minutes; Alertmanager re-sends Watchdog every 4.
HEARTBEAT_PERIOD_SECONDS = 300
HEARTBEAT_SILENT_PERIODS = 3
# A restore test runs once a day at a time that varies by the start window and the restore's
# length: a day and a quarter without a passing test means one was missed. CloudWatch allows
# hourly periods over at most 7 days (catalogue: cloudwatch.alarm-evaluation-range).
RESTORE_TEST_PERIOD_SECONDS = 3600
RESTORE_TEST_SILENT_PERIODS = 30

# CloudWatch's TreatMissingData values, named by what they mean for the alarm.
MISSING_IS_BREACHING = "breaching"
MISSING_IS_FINE = "notBreaching"
MISSING_KEEPS_STATE = "missing"


@dataclass(frozen=True)
class AlarmSpec:
    """One CloudWatch alarm. Several dimension sets: the alarm watches the maximum across them.

    With `query` (a CloudWatch Metrics Insights query) the alarm watches that instead: it spans
    every dimension set of the metric that matches, whichever sets the service publishes.
    """

    name: str
    description: str
    severity: str
    namespace: str
    metric: str
    statistic: str
    comparison: str
    threshold: float
    period_seconds: int
    evaluation_periods: int
    treat_missing_data: str
    dimension_sets: tuple[Mapping[str, pulumi.Input[str]], ...]
    query: str = ""
    datapoints_to_alarm: int | None = None
    """M of the N evaluation periods that must breach; None: all of them."""


def _lag_alarms(
    cfg: PlatformConfig,
    subject: str,
    what: str,
    namespace: str,
    metric: str,
    dimension_sets: tuple[Mapping[str, pulumi.Input[str]], ...],
    missing: str,
    note: str = "",
) -> list[AlarmSpec]:
    """A warning before the RPO and a critical alarm past it (seconds, maximum per minute).

    Thresholds and durations are the Prometheus rules' (components/alert_rules.py `lag_thresholds`).
    """
    return [
        AlarmSpec(
            name=f"{subject}-{what.lower().replace(' ', '-')}-{severity}",
            description=(
                f"[{severity}] {what} of {subject} above {seconds}s for {minutes} min "
                f"(RPO {cfg.rpo_seconds}s): a failover now would lose that much data.{note}"
            ),
            severity=severity,
            namespace=namespace,
            metric=metric,
            statistic="Maximum",
            comparison="GreaterThanThreshold",
            threshold=seconds,
            period_seconds=60,
            evaluation_periods=minutes,
            treat_missing_data=missing,
            dimension_sets=dimension_sets,
        )
        for severity, (seconds, minutes) in lag_thresholds(cfg).items()
    ]


def _cpu_alarms(
    subject: str, what: str, namespace: str, metric: str, dimension_sets: tuple[Mapping[str, str], ...]
) -> list[AlarmSpec]:
    return [
        AlarmSpec(
            name=f"{subject}-cpu-{severity}",
            description=f"[{severity}] {what} CPU of {subject} above {percent}% for {CPU_MINUTES} min.",
            severity=severity,
            namespace=namespace,
            metric=metric,
            statistic="Average",
            comparison="GreaterThanThreshold",
            threshold=percent,
            period_seconds=60,
            evaluation_periods=CPU_MINUTES,
            # No data means a stopped or unreachable node: the health checks and
            # replication alarms speak to that; CPU has nothing to say.
            treat_missing_data=MISSING_KEEPS_STATE,
            dimension_sets=dimension_sets,
        )
        for severity, percent in CPU_PERCENT.items()
    ]


def regional_alarms(cfg: PlatformConfig, role: str) -> list[AlarmSpec]:
    """Every alarm declared in the region of `role`, for the current DR state."""
    region = cfg.region_of(role)
    database = db_identifier(cfg, role, cfg.regions[role].db_generation)
    database_dimensions = ({"DBInstanceIdentifier": database},)
    cache = cache_group_id(cfg, role)
    cache_nodes = tuple({"CacheClusterId": node} for node in cache_member_cluster_ids(cfg, role))
    vault = backup_vault_name(cfg, role)

    # The current instance of each region, writer or replica: a replica short
    # of CPU or storage stops applying changes, which is the RPO.
    alarms = _cpu_alarms(database, "Database", "AWS/RDS", "CPUUtilization", database_dimensions)
    free_bytes = int(cfg.db_allocated_storage_gb * GIB * FREE_STORAGE_FRACTION)
    alarms.append(
        AlarmSpec(
            name=f"{database}-free-storage-low",
            description=(
                f"[{CRITICAL}] {database} has less than {free_bytes // GIB} GiB free "
                f"({FREE_STORAGE_FRACTION:.0%} of dbAllocatedStorageGb): storage autoscaling is not keeping up "
                "or has reached dbMaxAllocatedStorageGb."
            ),
            severity=CRITICAL,
            namespace="AWS/RDS",
            metric="FreeStorageSpace",
            statistic="Minimum",
            comparison="LessThanThreshold",
            threshold=free_bytes,
            period_seconds=60,
            evaluation_periods=1,
            treat_missing_data=MISSING_KEEPS_STATE,
            dimension_sets=database_dimensions,
        )
    )
    if current_is_replica(cfg, role):
        # PostgreSQL's ReplicaLag is the time since the last replayed commit: the heartbeat writer
        # (components/heartbeat.py) commits every 30 s, so only a replica that is behind passes the
        # thresholds (catalogue: rds.idle-source-replays-every-few-minutes). No data keeps the state:
        # a new replica reports nothing for the hours it takes to create, and is not paged for it;
        # the ReplicaLagNotReported rule speaks for a replica that runs without reporting lag.
        alarms += _lag_alarms(
            cfg,
            database,
            "Replica lag",
            "AWS/RDS",
            "ReplicaLag",
            database_dimensions,
            MISSING_KEEPS_STATE,
            note=" Also when the writer's heartbeat (CronJob dr-platform/replication-heartbeat in the active "
            "cluster) stopped on a quiet database: see ReplicationHeartbeatStale.",
        )
        # The Global Datastore's secondary is the same region as the database
        # replica. Its primary node publishes the lag, whichever node that is
        # now. A cache can be rebuilt, so silence there does not page.
        alarms += _lag_alarms(
            cfg,
            cache,
            "Global replication lag",
            "AWS/ElastiCache",
            "GlobalDatastoreReplicationLag",
            cache_nodes,
            MISSING_KEEPS_STATE,
        )
    alarms += _cpu_alarms(cache, "Redis engine", "AWS/ElastiCache", "EngineCPUUtilization", cache_nodes)

    if role == replication_source_role(cfg):
        destination_role = next(r for r in cfg.regions if r != role)
        destination_region = cfg.region_of(destination_role)
        bucket = data_bucket_name(cfg, role)
        replication = (
            {
                "SourceBucket": bucket,
                "DestinationBucket": data_bucket_name(cfg, destination_role),
                "RuleId": replication_rule_id(cfg, role),
            },
        )
        # S3 publishes replication metrics only while objects replicate: no data, no lag.
        alarms += [
            AlarmSpec(
                name=f"{bucket}-replication-latency-over-rtc",
                description=(
                    f"[{CRITICAL}] Objects of {bucket} take more than {S3_RTC_SECONDS // 60} min to reach "
                    f"{destination_region} (S3 Replication Time Control threshold)."
                ),
                severity=CRITICAL,
                namespace="AWS/S3",
                metric="ReplicationLatency",
                statistic="Maximum",
                comparison="GreaterThanThreshold",
                threshold=S3_RTC_SECONDS,
                period_seconds=300,
                evaluation_periods=1,
                treat_missing_data=MISSING_IS_FINE,
                dimension_sets=replication,
            ),
            AlarmSpec(
                name=f"{bucket}-replication-failed",
                description=f"[{CRITICAL}] Objects of {bucket} failed to replicate to {destination_region}.",
                severity=CRITICAL,
                namespace="AWS/S3",
                metric="OperationsFailedReplication",
                statistic="Sum",
                comparison="GreaterThanThreshold",
                threshold=0,
                period_seconds=300,
                evaluation_periods=1,
                treat_missing_data=MISSING_IS_FINE,
                dimension_sets=replication,
            ),
        ]

    # AWS Backup publishes job counts only when jobs end; an hour-long period
    # keeps a failure in ALARM long enough to be seen. Which dimension sets it
    # publishes them under is not settled (catalogue: backup.job-metric-dimensions):
    # a Metrics Insights query sums every set that names the vault, so the alarm
    # sees a failure whether it comes with ResourceType or without.
    # catalogue: cloudwatch.metrics-insights-alarm-spans-dimension-sets
    for metric, what in (("NumberOfBackupJobsFailed", "backup"), ("NumberOfCopyJobsFailed", "cross-region copy")):
        alarms.append(
            AlarmSpec(
                name=f"{vault}-{what.replace(' ', '-')}-jobs-failed",
                description=f"[{CRITICAL}] An AWS Backup {what} job of vault {vault} in {region} failed.",
                severity=CRITICAL,
                namespace="AWS/Backup",
                metric=metric,
                statistic="Sum",
                comparison="GreaterThanThreshold",
                threshold=0,
                period_seconds=3600,
                evaluation_periods=1,
                treat_missing_data=MISSING_IS_FINE,
                dimension_sets=({"BackupVaultName": vault},),
                query=f"SELECT SUM({metric}) FROM \"AWS/Backup\" WHERE BackupVaultName = '{vault}'",
            )
        )
    alarms.append(_heartbeat_alarm(cfg, role))
    alarms += _restore_test_alarms(cfg, role)
    return alarms


def _restore_test_alarms(cfg: PlatformConfig, role: str) -> list[AlarmSpec]:
    """A failed restore test (or restore job) pages; so does a day and a quarter without a passed one."""
    region = cfg.region_of(role)
    plan = restore_testing_plan_name(cfg, role)
    dimensions = ({PLAN_DIMENSION: plan},)
    silence_hours = RESTORE_TEST_PERIOD_SECONDS * RESTORE_TEST_SILENT_PERIODS // 3600
    return [
        AlarmSpec(
            name=physical_name(cfg, region, "restore-test-failed"),
            description=(
                f"[{CRITICAL}] An AWS Backup restore test of {plan} in {region} failed: the restore job failed, "
                "or what it restored was not complete, encrypted with the region's key, recent or reachable. "
                "The restore job's validation message says which (aws backup list-restore-jobs)."
            ),
            severity=CRITICAL,
            namespace=RESTORE_TEST_NAMESPACE,
            metric=FAILED_METRIC,
            statistic="Sum",
            comparison="GreaterThanThreshold",
            threshold=0,
            period_seconds=RESTORE_TEST_PERIOD_SECONDS,
            evaluation_periods=1,
            treat_missing_data=MISSING_IS_FINE,
            dimension_sets=dimensions,
        ),
        AlarmSpec(
            name=physical_name(cfg, region, "restore-test-missing"),
            description=(
                f"[{CRITICAL}] No AWS Backup restore test of {plan} in {region} passed in {silence_hours} h: the "
                "daily test did not run (no recent recovery point, the plan or its selections, the validator), "
                "or it failed."
            ),
            severity=CRITICAL,
            namespace=RESTORE_TEST_NAMESPACE,
            metric=PASSED_METRIC,
            statistic="Sum",
            comparison="LessThanThreshold",
            threshold=1,
            period_seconds=RESTORE_TEST_PERIOD_SECONDS,
            evaluation_periods=RESTORE_TEST_SILENT_PERIODS,
            datapoints_to_alarm=RESTORE_TEST_SILENT_PERIODS,
            # No datapoint is what a missing test looks like.
            treat_missing_data=MISSING_IS_BREACHING,
            dimension_sets=dimensions,
        ),
    ]


def _heartbeat_alarm(cfg: PlatformConfig, role: str) -> AlarmSpec:
    """The dead man's switch: no Watchdog heartbeat from the region's Alertmanager for 15 minutes."""
    region = cfg.region_of(role)
    silence_minutes = HEARTBEAT_PERIOD_SECONDS * HEARTBEAT_SILENT_PERIODS // 60
    # catalogue: sns.topic-metrics-every-five-minutes
    return AlarmSpec(
        name=physical_name(cfg, region, "monitoring-heartbeat-missing"),
        description=(
            f"[{CRITICAL}] No heartbeat from the monitoring stack in {region} for {silence_minutes} min: "
            "Prometheus, Alertmanager, their node or the cluster is down, so this region's alert rules "
            "(the DR rules included) are not being evaluated or delivered."
        ),
        severity=CRITICAL,
        namespace="AWS/SNS",
        metric="NumberOfMessagesPublished",
        statistic="Sum",
        comparison="LessThanThreshold",
        threshold=1,
        period_seconds=HEARTBEAT_PERIOD_SECONDS,
        evaluation_periods=HEARTBEAT_SILENT_PERIODS,
        # SNS publishes no datapoint for a topic nobody published to: silence is the failure.
        treat_missing_data=MISSING_IS_BREACHING,
        dimension_sets=({"TopicName": heartbeat_topic_name(cfg, role)},),
    )


def health_check_alarms(cfg: PlatformConfig, health_check_ids: Mapping[str, pulumi.Input[str]]) -> list[AlarmSpec]:
    """One alarm per region's endpoint health check, all in us-east-1 whatever the DR state.

    During a us-east-1 outage these alarms may not evaluate or notify; the
    health checks themselves keep failing traffic over, and the regional alarms
    in the other region keep working.
    """
    return [
        AlarmSpec(
            name=physical_name(cfg, cfg.region_of(role), "endpoint-unhealthy"),
            description=(
                f"[{CRITICAL}] Route53 health checkers find the {cfg.region_of(role)} endpoint of {cfg.app_fqdn} "
                "unhealthy: when it is the active region, traffic is failing over to the other one."
            ),
            severity=CRITICAL,
            namespace="AWS/Route53",
            metric="HealthCheckStatus",
            statistic="Minimum",
            comparison="LessThanThreshold",
            threshold=1,
            period_seconds=60,
            evaluation_periods=1,
            # Route53 reports every minute while the check exists: silence means blindness.
            treat_missing_data=MISSING_IS_BREACHING,
            dimension_sets=({"HealthCheckId": check_id},),
        )
        for role, check_id in health_check_ids.items()
    ]


class AlertTopicArgs(TypedDict):
    topic_name: str
    kms_key_arn: pulumi.Input[str]
    emails: Sequence[str]
    https_endpoints: Sequence[str]
    secret_protocols: frozenset[str]
    """Protocols (email, https) whose endpoints came from config set with --secret: passed on as secrets."""


class AlertTopic(pulumi.ComponentResource):
    """A region's SNS topic for alarms, encrypted with the region's key."""

    def __init__(self, name: str, args: AlertTopicArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:alerting:AlertTopic", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        topic = aws.sns.Topic(
            f"{name}-topic",
            name=args["topic_name"],
            kms_master_key_id=args["kms_key_arn"],
            opts=child,
        )
        subscribers = [("email", e) for e in args["emails"]] + [("https", u) for u in args["https_endpoints"]]
        for protocol, endpoint in subscribers:
            # Named by endpoint, not position: removing one leaves the others alone.
            digest = hashlib.sha256(endpoint.encode()).hexdigest()[:10]
            aws.sns.TopicSubscription(
                f"{name}-{protocol}-{digest}",
                topic=topic.arn,
                protocol=protocol,
                # A secret input keeps the state's copy (and the subscription's outputs) encrypted.
                # catalogue: pulumi-cli.language-host-passes-secret-keys
                endpoint=pulumi.Output.secret(endpoint) if protocol in args["secret_protocols"] else endpoint,
                opts=child,
            )
        self.arn = topic.arn
        self.register_outputs({"arn": self.arn})


class AlarmsArgs(TypedDict):
    topic_arn: pulumi.Input[str]
    alarms: Sequence[AlarmSpec]


class Alarms(pulumi.ComponentResource):
    """CloudWatch alarms of one region, sending ALARM and OK to that region's topic."""

    def __init__(self, name: str, args: AlarmsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:alerting:Alarms", name, None, opts)
        for spec in args["alarms"]:
            aws.cloudwatch.MetricAlarm(
                f"{name}-{spec.name}",
                name=spec.name,
                alarm_description=spec.description,
                comparison_operator=spec.comparison,
                threshold=spec.threshold,
                evaluation_periods=spec.evaluation_periods,
                treat_missing_data=spec.treat_missing_data,
                alarm_actions=[args["topic_arn"]],
                ok_actions=[args["topic_arn"]],
                datapoints_to_alarm=spec.datapoints_to_alarm,
                tags={"severity": spec.severity},
                opts=pulumi.ResourceOptions(parent=self),
                **_metric_arguments(spec),
            )
        self.register_outputs({})


def _metric_arguments(spec: AlarmSpec) -> dict[str, object]:
    """A Metrics Insights query, a single metric, or metric math taking the maximum over several (every cache node)."""
    if spec.query:
        query = aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id="q", expression=spec.query, period=spec.period_seconds, label=spec.metric, return_data=True
        )
        return {"metric_queries": [query]}
    if len(spec.dimension_sets) == 1:
        return {
            "namespace": spec.namespace,
            "metric_name": spec.metric,
            "statistic": spec.statistic,
            "period": spec.period_seconds,
            "dimensions": spec.dimension_sets[0],
        }
    series = [
        aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id=f"m{index}",
            metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace=spec.namespace,
                metric_name=spec.metric,
                stat=spec.statistic,
                period=spec.period_seconds,
                dimensions=dimensions,
            ),
            return_data=False,
        )
        for index, dimensions in enumerate(spec.dimension_sets)
    ]
    worst = aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id="worst",
        expression=f"MAX([{', '.join(query.id for query in series)}])",
        label=f"{spec.metric} (maximum across {len(series)} nodes)",
        return_data=True,
    )
    return {"metric_queries": [*series, worst]}
