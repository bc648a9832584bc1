"""The dr-platform policy rules (pulumi-policy), usable with and without the engine.

The pack (`policy/__main__.py`) registers these rules with `pulumi preview
--policy-pack policy`; `drctl plan` runs the very same rules over an offline
evaluation through `check_resources` / `check_stack`. This module depends on
pulumi-policy and the standard library only, so the pack runs in its own
virtualenv without the rest of the project.

Properties are read by their wire names (camelCase), as the engine passes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"
BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
BUCKET_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
CACHE_REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
BACKUP_PLAN = "aws:backup/plan:Plan"

KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")
PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
# AWS Backup keeps continuous (point-in-time) backups for at most 35 days.
CONTINUOUS_MAX_DAYS = 35


def _is_true(value: Any) -> bool:
    """Bridged booleans arrive as bools, or as strings for the provider's nullable ones."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _items(value: Any) -> list[Mapping[str, Any]]:
    """A list-of-objects property as a list, whatever was (not) declared."""
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, Mapping)]
    return []


def _region_of_arn(arn: Any) -> str | None:
    parts = arn.split(":") if isinstance(arn, str) else []
    return (parts[3] or None) if len(parts) > 3 else None


def _bucket_name(reference: Any) -> str | None:
    """A bucket name from a name, an id (the name, in AWS) or an ARN (`arn:aws:s3:::name`)."""
    if not isinstance(reference, str) or not reference:
        return None
    return reference.rsplit(":", 1)[-1] if reference.startswith("arn:") else reference


def _resource_region(args: ResourceValidationArgs) -> str | None:
    region = args.props.get("region")
    if not region and args.provider is not None:
        region = args.provider.props.get("region")
    return region if isinstance(region, str) and region else None


def _config_int(args: ResourceValidationArgs | StackValidationArgs, key: str) -> int:
    return int(args.get_config()[key])


# --- databases ---------------------------------------------------------------------


def rds_encrypted_at_rest(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in (RDS_INSTANCE, RDS_CLUSTER):
        return
    props = args.props
    if _is_true(props.get("storageEncrypted")):
        return
    # A cross-region replica ignores storageEncrypted: its own region's KMS key encrypts it.
    if args.resource_type == RDS_INSTANCE and props.get("replicateSourceDb") and props.get("kmsKeyId"):
        return
    report_violation("storage must be encrypted at rest (storageEncrypted, or kmsKeyId on a cross-region replica)")


def rds_deletion_protection(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type in (RDS_INSTANCE, RDS_CLUSTER) and not _is_true(args.props.get("deletionProtection")):
        report_violation("deletionProtection must be true")


def rds_backup_retention(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in (RDS_INSTANCE, RDS_CLUSTER):
        return
    # A replica's backup settings only apply once it is promoted (and then it
    # is a writer and declared as one); its source keeps the backups.
    if args.props.get("replicateSourceDb"):
        return
    minimum = _config_int(args, "minimumDays")
    days = args.props.get("backupRetentionPeriod")
    if not isinstance(days, (int, float)) or days < minimum:
        report_violation(f"backupRetentionPeriod must be at least {minimum} days, got {days!r}")


def rds_not_publicly_accessible(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == RDS_INSTANCE and _is_true(args.props.get("publiclyAccessible")):
        report_violation("publiclyAccessible must not be true: databases are reached from inside the VPC only")


# --- object storage ----------------------------------------------------------------


def s3_encrypted_with_kms(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in BUCKET_ENCRYPTION:
        return
    rules = _items(args.props.get("rules"))
    if not rules:
        report_violation("declares no encryption rule")
    for rule in rules:
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        algorithm = default.get("sseAlgorithm") if isinstance(default, Mapping) else None
        if algorithm not in KMS_ALGORITHMS:
            report_violation(f"sseAlgorithm must be one of {', '.join(KMS_ALGORITHMS)} (SSE-KMS), got {algorithm!r}")


def s3_public_access_blocked(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != BUCKET_PUBLIC_ACCESS_BLOCK:
        return
    off = [flag for flag in PUBLIC_ACCESS_FLAGS if not _is_true(args.props.get(flag))]
    if off:
        report_violation(f"all four public access blocks must be true; not set: {', '.join(off)}")


def s3_buckets_protected(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Every bucket is SSE-KMS encrypted and public-access blocked; data buckets replicate."""
    buckets = {
        name: resource
        for resource in args.resources
        if resource.resource_type in BUCKETS and (name := _bucket_name(resource.props.get("bucket")))
    }
    encrypted = _buckets_referenced(args.resources, BUCKET_ENCRYPTION)
    blocked = _buckets_referenced(args.resources, (BUCKET_PUBLIC_ACCESS_BLOCK,))
    replicated = _replicated_buckets(args.resources)
    data_bucket = re.compile(args.get_config()["dataBucketPattern"])
    for name, bucket in sorted(buckets.items()):
        if name not in encrypted:
            report_violation(f"bucket {name} has no SSE-KMS encryption configuration", bucket.urn)
        if name not in blocked:
            report_violation(f"bucket {name} has no public access block", bucket.urn)
        if data_bucket.search(name) and name not in replicated:
            report_violation(
                f"data bucket {name} is neither the source nor the destination of an enabled replication rule",
                bucket.urn,
            )


def _buckets_referenced(resources: Iterable[PolicyResource], types: tuple[str, ...]) -> set[str]:
    return {name for r in resources if r.resource_type in types and (name := _bucket_name(r.props.get("bucket")))}


def _replicated_buckets(resources: Iterable[PolicyResource]) -> set[str]:
    """Buckets at either end of an enabled replication rule."""
    ends: set[str] = set()
    for config in (r for r in resources if r.resource_type == BUCKET_REPLICATION):
        enabled = [rule for rule in _items(config.props.get("rules")) if rule.get("status") == "Enabled"]
        source = _bucket_name(config.props.get("bucket"))
        for rule in enabled:
            destination = rule.get("destination") or {}
            target = _bucket_name(destination.get("bucket")) if isinstance(destination, Mapping) else None
            ends.update(name for name in (source, target) if name)
    return ends


# --- cache and cluster -------------------------------------------------------------


def elasticache_encrypted_at_rest(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != CACHE_REPLICATION_GROUP:
        return
    # A Global Datastore secondary inherits encryption from the global group.
    if args.props.get("globalReplicationGroupId"):
        return
    if not _is_true(args.props.get("atRestEncryptionEnabled")):
        report_violation("atRestEncryptionEnabled must be true")


def eks_secrets_encrypted(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    for config in _items(args.props.get("encryptionConfig")):
        provider = config.get("provider") or {}
        resources = config.get("resources") or []
        if "secrets" in resources and isinstance(provider, Mapping) and provider.get("keyArn"):
            return
    report_violation("Kubernetes secrets must be envelope-encrypted with a KMS key (encryptionConfig)")


# --- backups -----------------------------------------------------------------------

_CRON = re.compile(r"cron\((\S+) (\S+) (\S+) (\S+) (\S+) (\S+)\)")


def backup_rule_kind(rule: Mapping[str, Any]) -> str | None:
    """`continuous`, `daily`, `weekly` or None (another cadence) for one backup plan rule."""
    if _is_true(rule.get("enableContinuousBackup")):
        return "continuous"
    match = _CRON.fullmatch(rule.get("schedule") or "")
    if not match:
        return None
    _, _, day_of_month, month, day_of_week, _ = match.groups()
    if month != "*":
        return None
    if day_of_month in ("*", "?") and day_of_week in ("*", "?"):
        return "daily"
    if day_of_month == "?" and re.fullmatch(r"[A-Z]{3}|[1-7]", day_of_week):
        return "weekly"
    return None


def backup_plan_retention(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Each daily, weekly and continuous rule keeps long enough; daily and weekly copy to another region."""
    if args.resource_type != BACKUP_PLAN:
        return
    config = args.get_config()
    region = _resource_region(args)
    for rule in _items(args.props.get("rules")):
        kind = backup_rule_kind(rule)
        if kind is None:
            continue
        name = rule.get("ruleName", "?")
        lifecycle = rule.get("lifecycle") or {}
        kept = lifecycle.get("deleteAfter") if isinstance(lifecycle, Mapping) else None
        minimum = int(config[f"{kind}MinDays"])
        if not isinstance(kept, (int, float)) or kept < minimum:
            report_violation(f"{kind} rule {name} must keep recovery points at least {minimum} days, got {kept!r}")
        if kind == "continuous":
            if isinstance(kept, (int, float)) and kept > CONTINUOUS_MAX_DAYS:
                report_violation(f"continuous rule {name} keeps {kept} days; AWS Backup allows {CONTINUOUS_MAX_DAYS}")
            continue  # point-in-time recovery is regional by nature
        destinations = [a.get("destinationVaultArn") for a in _items(rule.get("copyActions"))]
        elsewhere = [d for d in destinations if _region_of_arn(d) and _region_of_arn(d) != region]
        if not elsewhere:
            report_violation(f"{kind} rule {name} must copy recovery points to a vault in another region (3-2-1)")


def backups_cover_databases(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """A stack with databases declares daily, weekly and continuous backup rules."""
    if not any(r.resource_type in (RDS_INSTANCE, RDS_CLUSTER) for r in args.resources):
        return
    kinds = {
        backup_rule_kind(rule)
        for plan in args.resources
        if plan.resource_type == BACKUP_PLAN
        for rule in _items(plan.props.get("rules"))
    }
    missing = [kind for kind in ("daily", "weekly", "continuous") if kind not in kinds]
    if missing:
        report_violation(f"the stack declares databases but no {', '.join(missing)} backup rule")


# --- the rule set ------------------------------------------------------------------


def _days(default: int, low: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "default": default}


MANDATORY = EnforcementLevel.MANDATORY

RESOURCE_POLICIES: list[ResourceValidationPolicy] = [
    ResourceValidationPolicy(
        name="rds-encrypted-at-rest",
        description="RDS instances and clusters are encrypted at rest with KMS.",
        validate=rds_encrypted_at_rest,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="rds-deletion-protection",
        description="RDS instances and clusters have deletion protection on.",
        validate=rds_deletion_protection,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="rds-backup-retention",
        description="RDS writers keep automated backups at least 7 days.",
        validate=rds_backup_retention,
        enforcement_level=MANDATORY,
        config_schema=PolicyConfigSchema({"minimumDays": _days(7, 1)}),
    ),
    ResourceValidationPolicy(
        name="rds-not-publicly-accessible",
        description="No RDS instance is publicly accessible.",
        validate=rds_not_publicly_accessible,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="s3-encrypted-with-kms",
        description="S3 bucket encryption configurations use SSE-KMS.",
        validate=s3_encrypted_with_kms,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="s3-public-access-blocked",
        description="S3 public access blocks set all four flags.",
        validate=s3_public_access_blocked,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="elasticache-encrypted-at-rest",
        description="ElastiCache replication groups are encrypted at rest.",
        validate=elasticache_encrypted_at_rest,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="eks-secrets-encrypted",
        description="EKS clusters envelope-encrypt Kubernetes secrets with KMS.",
        validate=eks_secrets_encrypted,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="backup-plan-retention",
        description="Backup rules keep daily >= 7 days, weekly >= 28 days, continuous >= 1 day; "
        "daily and weekly copy to another region.",
        validate=backup_plan_retention,
        enforcement_level=MANDATORY,
        config_schema=PolicyConfigSchema(
            {"dailyMinDays": _days(7, 1), "weeklyMinDays": _days(28, 1), "continuousMinDays": _days(1, 1)}
        ),
    ),
]

STACK_POLICIES: list[StackValidationPolicy] = [
    StackValidationPolicy(
        name="s3-buckets-protected",
        description="Every bucket has SSE-KMS and a public access block; data buckets are replicated.",
        validate=s3_buckets_protected,
        enforcement_level=MANDATORY,
        config_schema=PolicyConfigSchema({"dataBucketPattern": {"type": "string", "default": "-data$"}}),
    ),
    StackValidationPolicy(
        name="backups-cover-databases",
        description="A stack with databases declares daily, weekly and continuous backup rules.",
        validate=backups_cover_databases,
        enforcement_level=MANDATORY,
    ),
]

ALL_POLICIES: list[Policy] = [*RESOURCE_POLICIES, *STACK_POLICIES]


# --- running the rules outside the engine ------------------------------------------


@dataclass(frozen=True)
class Violation:
    policy: str
    message: str
    urn: str | None


def default_config(policy: Policy) -> dict[str, Any]:
    """The config the engine would pass a policy when the stack sets none."""
    schema = policy.config_schema
    return {key: spec["default"] for key, spec in (schema.properties if schema else {}).items() if "default" in spec}


def check_resources(resources: Iterable[PolicyResource]) -> list[Violation]:
    """Run every resource rule over `resources`, as the engine does in a preview."""
    violations: list[Violation] = []
    resources = list(resources)
    for policy in RESOURCE_POLICIES:
        config = default_config(policy)
        for resource in resources:
            args = ResourceValidationArgs(
                resource.resource_type,
                resource.props,
                resource.urn,
                resource.name,
                resource.opts,
                resource.provider,
                config,
            )
            policy.validate(args, _collector(violations, policy, resource.urn))
    return violations


def check_stack(resources: Iterable[PolicyResource]) -> list[Violation]:
    """Run every stack rule over the whole set of resources."""
    violations: list[Violation] = []
    resources = list(resources)
    for policy in STACK_POLICIES:
        policy.validate(StackValidationArgs(resources, default_config(policy)), _collector(violations, policy, None))
    return violations


def _collector(violations: list[Violation], policy: Policy, default_urn: str | None) -> ReportViolation:
    def report(message: str, urn: str | None = None) -> None:
        violations.append(Violation(policy.name, message, urn or default_urn))

    return report
