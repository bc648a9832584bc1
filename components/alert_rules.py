"""Prometheus alert rules as data: the operations documents' rules plus the DR rules.

`rule_groups(cfg, role)` is what `Monitoring` declares as PrometheusRule
resources in the cluster of region role `role`; tests and docs read the same
structures. DR thresholds come from the validated config (`rpoSeconds`,
`replicaLagWarningSeconds`), so changing the objective changes the rules.

AWS metrics (replica lag, S3 replication, AWS Backup, Global Datastore lag,
ACM expiry) are read from CloudWatch by YACE (yet-another-cloudwatch-exporter),
whose series are named `aws_<namespace>_<metric in snake case>_<statistic>`
with `dimension_<Name>` labels; each cluster's exporter reads its own region.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.config import DrState, PlatformConfig
from components.heartbeat import NAME as HEARTBEAT_CRONJOB
from components.heartbeat import NAMESPACE as HEARTBEAT_NAMESPACE
from components.naming import db_identifier

# CloudWatch series as YACE names them (namespace AWS/RDS, AWS/S3, ...).
RDS_REPLICA_LAG = "aws_rds_replica_lag_maximum"
RDS_CPU = "aws_rds_cpuutilization_average"
# kube-state-metrics' CronJob series (the heartbeat writer's, components/heartbeat.py).
CRONJOB_LAST_SUCCESS = "kube_cronjob_status_last_successful_time"
CRONJOB_CREATED = "kube_cronjob_created"
S3_REPLICATION_LATENCY = "aws_s3_replication_latency_maximum"
S3_FAILED_REPLICATION = "aws_s3_operations_failed_replication_sum"
CACHE_REPLICATION_LAG = "aws_elasticache_global_datastore_replication_lag_maximum"
BACKUP_JOBS_FAILED = "aws_backup_number_of_backup_jobs_failed_sum"
BACKUP_JOBS_COMPLETED = "aws_backup_number_of_backup_jobs_completed_sum"
COPY_JOBS_FAILED = "aws_backup_number_of_copy_jobs_failed_sum"
ACM_DAYS_TO_EXPIRY = "aws_certificatemanager_days_to_expiry_minimum"

# The daily backup plus a grace period for a slow job.
BACKUP_OVERDUE_HOURS = 26
# Three missed one-minute runs of the heartbeat writer: well before an idle database's lag nears the RPO.
HEARTBEAT_STALE_SECONDS = 180


@dataclass(frozen=True)
class AlertRule:
    alert: str
    expr: str
    duration: str
    severity: str
    category: str
    summary: str
    description: str

    def to_prometheus(self, runbook_base: str) -> dict[str, Any]:
        """The rule as the PrometheusRule CRD spells it."""
        return {
            "alert": self.alert,
            "expr": self.expr,
            "for": self.duration,
            "labels": {"severity": self.severity, "category": self.category},
            "annotations": {
                "summary": self.summary,
                "description": self.description,
                "runbook_url": f"{runbook_base}#{self.alert.lower()}",
            },
        }


@dataclass(frozen=True)
class RuleGroup:
    name: str
    rules: tuple[AlertRule, ...]

    def to_prometheus(self, runbook_base: str) -> dict[str, Any]:
        return {"name": self.name, "rules": [rule.to_prometheus(runbook_base) for rule in self.rules]}


# Ratios are summed per service before dividing: dividing the raw series would
# pair each 5xx series with itself and always yield 1.
ERROR_RATIO = (
    'sum by (namespace, service) (rate(http_requests_total{code=~"5.."}[5m]))\n'
    "  / sum by (namespace, service) (rate(http_requests_total[5m]))"
)
P95_LATENCY = (
    "histogram_quantile(0.95,\n  sum by (namespace, service, le) (rate(http_request_duration_seconds_bucket[5m])))"
)
MEMORY_RATIO = "(node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes) / node_memory_MemTotal_bytes"
CPU_RATIO = '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m]))'
DISK_RATIO = (
    '1 - node_filesystem_avail_bytes{fstype!~"tmpfs|overlay|squashfs"}'
    ' / node_filesystem_size_bytes{fstype!~"tmpfs|overlay|squashfs"}'
)

SERVICE_RULES = RuleGroup(
    "platform-services",
    (
        AlertRule(
            "ServiceDown",
            "up == 0",
            "1m",
            "critical",
            "availability",
            "Service {{ $labels.job }} is down",
            "Target {{ $labels.instance }} of {{ $labels.job }} in {{ $labels.namespace }} "
            "has been down for more than 1 minute.",
        ),
        AlertRule(
            "HighErrorRate",
            f"{ERROR_RATIO}\n  > 0.05",
            "5m",
            "critical",
            "availability",
            "High error rate on {{ $labels.service }}",
            "5xx ratio is {{ $value | humanizePercentage }} for {{ $labels.service }} "
            "(threshold 5%; also the failback rollback trigger).",
        ),
        AlertRule(
            "HighLatency",
            f"{P95_LATENCY}\n  > 0.5",
            "10m",
            "warning",
            "performance",
            "High latency on {{ $labels.service }}",
            "95th percentile latency is {{ $value | humanizeDuration }} for {{ $labels.service }} (threshold 0.5s).",
        ),
        AlertRule(
            "RedisDown",
            "redis_up == 0",
            "1m",
            "critical",
            "availability",
            "Redis is down",
            "redis_exporter {{ $labels.instance }} cannot reach the Redis replication group.",
        ),
    ),
)

RESOURCE_RULES = RuleGroup(
    "platform-resources",
    (
        AlertRule(
            "HighMemoryUsage",
            f"{MEMORY_RATIO} > 0.90",
            "5m",
            "warning",
            "capacity",
            "High memory usage on {{ $labels.instance }}",
            "Memory usage is {{ $value | humanizePercentage }} (threshold 90%).",
        ),
        AlertRule(
            "HighCpuUsage",
            f"{CPU_RATIO} > 0.80",
            "5m",
            "warning",
            "capacity",
            "High CPU usage on {{ $labels.instance }}",
            "CPU usage is {{ $value | humanizePercentage }} (threshold 80%): scale up.",
        ),
        AlertRule(
            "DiskSpaceLow",
            f"{DISK_RATIO} > 0.90",
            "1m",
            "critical",
            "capacity",
            "Disk almost full on {{ $labels.instance }}",
            "{{ $labels.mountpoint }} is {{ $value | humanizePercentage }} full (threshold 90%): "
            "clean logs or expand the volume.",
        ),
    ),
)

SECURITY_RULES = RuleGroup(
    "platform-security",
    (
        AlertRule(
            "BruteForceAttack",
            "sum by (namespace, service) (increase(authentication_failures_total[5m])) > 100",
            "2m",
            "critical",
            "security",
            "Potential brute force attack on {{ $labels.service }}",
            "{{ $value }} authentication failures in 5 minutes (threshold 100).",
        ),
        AlertRule(
            "UnauthorizedAccess",
            "sum by (namespace, service) (increase(authorization_denied_total[10m])) > 50",
            "5m",
            "warning",
            "security",
            "Many authorization denials on {{ $labels.service }}",
            "{{ $value }} authorization denials in 10 minutes (threshold 50).",
        ),
        AlertRule(
            "CertificateExpiring",
            # ACM certificates (the load balancers') and cert-manager's in-cluster ones.
            f"min by (dimension_CertificateArn) ({ACM_DAYS_TO_EXPIRY}) < 30\n"
            "or min by (namespace, name) (\n"
            "  (certmanager_certificate_expiration_timestamp_seconds - time()) / 86400) < 30",
            "1h",
            "warning",
            "security",
            "Certificate expiring soon",
            "Certificate {{ $labels.dimension_CertificateArn }}{{ $labels.name }} expires in "
            "{{ $value | humanize }} days (threshold 30).",
        ),
    ),
)


def lag_thresholds(cfg: PlatformConfig) -> dict[str, tuple[int, int]]:
    """Severity -> (seconds, minutes) of every replication-lag alert: the CloudWatch alarms' and these rules'."""
    return {"warning": (cfg.replica_lag_warning_seconds, 2), "critical": (cfg.rpo_seconds, 1)}


def _lag_rules(prefix: str, what: str, series: str, by: str, cfg: PlatformConfig) -> tuple[AlertRule, AlertRule]:
    """A warning before the RPO and a critical alert past it, for one replication lag."""
    lag = f"max by (region, {by}) ({series})"
    (warning, warning_minutes), (rpo, rpo_minutes) = lag_thresholds(cfg).values()
    return (
        AlertRule(
            f"{prefix}ApproachingRpo",
            f"{lag} > {warning}",
            f"{warning_minutes}m",
            "warning",
            "disaster-recovery",
            f"{what} is approaching the RPO",
            f"{what} of {{{{ $labels.{by} }}}} is {{{{ $value }}}}s "
            f"(warning at {cfg.replica_lag_warning_seconds}s, RPO {cfg.rpo_seconds}s).",
        ),
        AlertRule(
            f"{prefix}AboveRpo",
            f"{lag} > {rpo}",
            f"{rpo_minutes}m",
            "critical",
            "disaster-recovery",
            f"{what} exceeds the RPO",
            f"{what} of {{{{ $labels.{by} }}}} is {{{{ $value }}}}s, above the RPO of {cfg.rpo_seconds}s: "
            "a failover now would lose more data than allowed.",
        ),
    )


def dr_rules(cfg: PlatformConfig, role: str) -> RuleGroup:
    """Replication and backup rules; thresholds from config."""
    rules = [
        *_lag_rules("ReplicaLag", "Database replica lag", RDS_REPLICA_LAG, "dimension_DBInstanceIdentifier", cfg),
        *_lag_rules(
            "CacheReplicationLag", "Global Datastore lag", CACHE_REPLICATION_LAG, "dimension_CacheClusterId", cfg
        ),
        AlertRule(
            "S3ReplicationFailing",
            f"sum by (region, dimension_SourceBucket) ({S3_FAILED_REPLICATION}) > 0",
            "5m",
            "critical",
            "disaster-recovery",
            "S3 replication is failing",
            "{{ $value }} objects of {{ $labels.dimension_SourceBucket }} failed to replicate.",
        ),
        AlertRule(
            "S3ReplicationLatencyAboveRpo",
            f"max by (region, dimension_SourceBucket) ({S3_REPLICATION_LATENCY}) > {cfg.rpo_seconds}",
            "5m",
            "warning",
            "disaster-recovery",
            "S3 replication is slower than the RPO",
            "Objects of {{ $labels.dimension_SourceBucket }} take {{ $value }}s to replicate "
            f"(RPO {cfg.rpo_seconds}s).",
        ),
        AlertRule(
            "BackupJobFailed",
            f"sum by (region, dimension_BackupVaultName) ({BACKUP_JOBS_FAILED}) > 0",
            "1m",
            "critical",
            "disaster-recovery",
            "AWS Backup job failed",
            "{{ $value }} backup jobs failed for vault {{ $labels.dimension_BackupVaultName }}.",
        ),
        AlertRule(
            "BackupCopyJobFailed",
            f"sum by (region, dimension_BackupVaultName) ({COPY_JOBS_FAILED}) > 0",
            "1m",
            "critical",
            "disaster-recovery",
            "AWS Backup cross-region copy failed",
            "{{ $value }} copy jobs failed for vault {{ $labels.dimension_BackupVaultName }}: "
            "the offsite copy of the 3-2-1 rule is missing.",
        ),
        AlertRule(
            "BackupOverdue",
            # `or vector(0)`: no data at all means no evidence of a backup either.
            f"(sum(sum_over_time({BACKUP_JOBS_COMPLETED}[{BACKUP_OVERDUE_HOURS}h])) or vector(0)) < 1",
            "15m",
            "warning",
            "disaster-recovery",
            "No completed backup job recently",
            f"No AWS Backup job completed in this region in the last {BACKUP_OVERDUE_HOURS} hours.",
        ),
    ]
    rules.append(_heartbeat_rule())
    # The replica lives in the standby region except while failed over, when
    # there is none; only there does a missing lag series mean blind DR rules.
    if cfg.dr_state is not DrState.FAILED_OVER and cfg.region_of(role) == cfg.standby_region:
        replica = db_identifier(cfg, role, cfg.regions[role].db_generation)
        instance = f'{{dimension_DBInstanceIdentifier="{replica}"}}'
        rules.append(
            AlertRule(
                "ReplicaLagNotReported",
                # Only once the replica runs (RDS publishes its CPU): a replica being created reports
                # nothing for hours and is not an alert.
                f"absent({RDS_REPLICA_LAG}{instance})\n  and on () count({RDS_CPU}{instance}) > 0",
                "15m",
                "warning",
                "disaster-recovery",
                "Replica lag is not reported",
                f"{replica} runs (CloudWatch has its CPU) but has reported no replica lag for 15 minutes: "
                "replication is broken or stopped, and the RPO alerts cannot fire.",
            )
        )
    return RuleGroup("disaster-recovery", tuple(rules))


def _heartbeat_rule() -> AlertRule:
    """The heartbeat writer has not succeeded lately: on a quiet database the replica lag alerts will fire.

    Silent where no heartbeat CronJob runs (kube-state-metrics has no series for it), so every cluster
    carries it whatever the DR state.
    """
    job = f'{{namespace="{HEARTBEAT_NAMESPACE}", cronjob="{HEARTBEAT_CRONJOB}"}}'

    def older_than_stale(series: str) -> str:
        return f"(time() - {series}{job}) > {HEARTBEAT_STALE_SECONDS}"

    return AlertRule(
        "ReplicationHeartbeatStale",
        # Last success too long ago, or (never succeeded) created too long ago.
        f"{older_than_stale(CRONJOB_LAST_SUCCESS)}\n"
        f"or ({older_than_stale(CRONJOB_CREATED)}\n  unless on (namespace, cronjob) {CRONJOB_LAST_SUCCESS}{job})",
        "2m",
        "warning",
        "disaster-recovery",
        "The replication heartbeat is not being written",
        f"CronJob {HEARTBEAT_NAMESPACE}/{HEARTBEAT_CRONJOB} has not succeeded for more than "
        f"{HEARTBEAT_STALE_SECONDS}s: on a quiet database the replica's lag now climbs towards the RPO and the "
        "ReplicaLag alerts fire without replication being behind (kubectl -n dr-platform get jobs; the job's logs "
        "say whether the secret, the network or the database refused).",
    )


def rule_groups(cfg: PlatformConfig, role: str) -> tuple[RuleGroup, ...]:
    """Every rule group declared in the cluster of region role `role`."""
    return (SERVICE_RULES, RESOURCE_RULES, SECURITY_RULES, dr_rules(cfg, role))
