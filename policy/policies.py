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
RDS_CLUSTER_INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
RDS_GLOBAL_CLUSTER = "aws:rds/globalCluster:GlobalCluster"
# Kinds, not just what the program declares today: every type that stores a database.
RDS_DATABASES = (RDS_INSTANCE, RDS_CLUSTER, RDS_GLOBAL_CLUSTER)
DIRECTORY_BUCKET = "aws:s3/directoryBucket:DirectoryBucket"
# General purpose buckets: the ones a public access block applies to.
GENERAL_BUCKETS = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKETS = (*GENERAL_BUCKETS, DIRECTORY_BUCKET)
BUCKET_ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
BUCKET_PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ACCOUNT_PUBLIC_ACCESS_BLOCK = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
BUCKET_REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
CACHE_REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_CLUSTER = "aws:elasticache/cluster:Cluster"
CACHE_SERVERLESS = "aws:elasticache/serverlessCache:ServerlessCache"
CACHE_GLOBAL_GROUP = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
BACKUP_PLAN = "aws:backup/plan:Plan"
BACKUP_VAULT = "aws:backup/vault:Vault"
BACKUP_VAULT_LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SECURITY_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
SECURITY_GROUP_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SECURITY_GROUP_INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
IAM_ROLE = "aws:iam/role:Role"
IAM_USER = "aws:iam/user:User"
# The bootstrap's boundary (components/iam.py PROGRAM_ROLE_BOUNDARY): the CI roles may create no role without it.
ROLE_BOUNDARY_POLICY = "dr-platform-program-boundary"

WORLD_CIDRS = ("0.0.0.0/0", "::/0")
# The only ports open to the world: the load balancers' HTTP and HTTPS listeners.
WEB_PORTS = (80, 443)

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
    if args.resource_type not in RDS_DATABASES:
        return
    props = args.props
    if _is_true(props.get("storageEncrypted")):
        return
    # A cross-region replica ignores storageEncrypted: its own region's KMS key encrypts it.
    if args.resource_type == RDS_INSTANCE and props.get("replicateSourceDb") and props.get("kmsKeyId"):
        return
    # A global cluster built from an existing cluster takes that cluster's encryption
    # (storageEncrypted cannot be given with it); the cluster itself is checked.
    if args.resource_type == RDS_GLOBAL_CLUSTER and props.get("sourceDbClusterIdentifier"):
        return
    report_violation("storage must be encrypted at rest (storageEncrypted, or kmsKeyId on a cross-region replica)")


def rds_deletion_protection(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type in RDS_DATABASES and not _is_true(args.props.get("deletionProtection")):
        report_violation("deletionProtection must be true")


def rds_backup_retention(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in (RDS_INSTANCE, RDS_CLUSTER):
        return
    # Replicas are not held to it: an Aurora replica cluster inherits its source's backups, and
    # PostgreSQL replicas keep their own only from 14.1 on (the program declares them there:
    # catalogue rds.postgres-replica-automated-backups, checked by automation/aws_rules.py).
    if args.props.get("replicateSourceDb") or args.props.get("replicationSourceIdentifier"):
        return
    minimum = _config_int(args, "minimumDays")
    days = args.props.get("backupRetentionPeriod")
    if not isinstance(days, (int, float)) or days < minimum:
        report_violation(f"backupRetentionPeriod must be at least {minimum} days, got {days!r}")


def rds_not_publicly_accessible(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    # Aurora's reachability is a property of each cluster instance, not of the cluster.
    if args.resource_type in (RDS_INSTANCE, RDS_CLUSTER_INSTANCE) and _is_true(args.props.get("publiclyAccessible")):
        report_violation("publiclyAccessible must not be true: databases are reached from inside the VPC only")


# --- object storage ----------------------------------------------------------------


def s3_encrypted_with_kms(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in BUCKET_ENCRYPTION:
        return
    rules = _items(args.props.get("rules"))
    if not rules:
        report_violation("declares no encryption rule")
    for message in _sse_problems(rules):
        report_violation(message)


def _sse_problems(rules: Iterable[Mapping[str, Any]]) -> list[str]:
    problems = []
    for rule in rules:
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        algorithm = default.get("sseAlgorithm") if isinstance(default, Mapping) else None
        if algorithm not in KMS_ALGORITHMS:
            problems.append(f"sseAlgorithm must be one of {', '.join(KMS_ALGORITHMS)} (SSE-KMS), got {algorithm!r}")
    return problems


def s3_public_access_blocked(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type not in (BUCKET_PUBLIC_ACCESS_BLOCK, ACCOUNT_PUBLIC_ACCESS_BLOCK):
        return
    off = [flag for flag in PUBLIC_ACCESS_FLAGS if not _is_true(args.props.get(flag))]
    if off:
        report_violation(f"all four public access blocks must be true; not set: {', '.join(off)}")


def s3_buckets_protected(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Every bucket, however named, is SSE-KMS encrypted and public-access blocked; data buckets replicate.

    A bucket named by `bucketPrefix` (or not at all) has no name until it is
    created, so configurations are matched to buckets by the engine's property
    dependencies as well as by name; a bucket that matches nothing fails.
    """
    resources = list(args.resources)
    encrypted = _referencing(resources, BUCKET_ENCRYPTION, "bucket")
    blocked = _referencing(resources, (BUCKET_PUBLIC_ACCESS_BLOCK,), "bucket")
    replicated = _replicated_buckets(resources)
    data_bucket = re.compile(args.get_config()["dataBucketPattern"])
    for bucket in sorted((r for r in resources if r.resource_type in BUCKETS), key=lambda r: r.urn):
        keys = _bucket_keys(bucket)
        label = _bucket_name(bucket.props.get("bucket")) or bucket.props.get("bucketPrefix") or bucket.name
        inline_sse = _items((bucket.props.get("serverSideEncryptionConfiguration") or {}).get("rule"))
        if not (keys & encrypted) and not (inline_sse and not _sse_problems(inline_sse)):
            report_violation(f"bucket {label} has no SSE-KMS encryption configuration", bucket.urn)
        # Directory buckets always block public access; AWS offers no setting to change it.
        if bucket.resource_type in GENERAL_BUCKETS and not (keys & blocked):
            report_violation(f"bucket {label} has no public access block", bucket.urn)
        if data_bucket.search(str(label)) and not (keys & replicated):
            report_violation(
                f"data bucket {label} is neither the source nor the destination of an enabled replication rule",
                bucket.urn,
            )


def _bucket_keys(bucket: PolicyResource) -> set[str]:
    """What a configuration may use to name this bucket: its URN (dependencies) and its name."""
    name = _bucket_name(bucket.props.get("bucket"))
    return {bucket.urn, *([name] if name else [])}


def _referencing(resources: Iterable[PolicyResource], types: tuple[str, ...], prop: str) -> set[str]:
    """Names and URNs of the resources that resources of `types` point at through `prop`."""
    found: set[str] = set()
    for r in resources:
        if r.resource_type not in types:
            continue
        if name := _bucket_name(r.props.get(prop)):
            found.add(name)
        found.update(d.urn for d in (r.property_dependencies or {}).get(prop, ()))
    return found


def _replicated_buckets(resources: Iterable[PolicyResource]) -> set[str]:
    """Buckets (names and URNs) at either end of an enabled replication rule."""
    ends: set[str] = set()
    for config in (r for r in resources if r.resource_type == BUCKET_REPLICATION):
        enabled = [rule for rule in _items(config.props.get("rules")) if rule.get("status") == "Enabled"]
        if not enabled:
            continue
        ends.update(d.urn for deps in (config.property_dependencies or {}).values() for d in deps)
        source = _bucket_name(config.props.get("bucket"))
        for rule in enabled:
            destination = rule.get("destination") or {}
            target = _bucket_name(destination.get("bucket")) if isinstance(destination, Mapping) else None
            ends.update(name for name in (source, target) if name)
    return ends


# --- cache ---------------------------------------------------------------------------


def elasticache_encrypted_at_rest(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == CACHE_SERVERLESS:
        # Always encrypted by AWS; the key must be ours, as everywhere else.
        if not args.props.get("kmsKeyId"):
            report_violation("a serverless cache must name a customer-managed KMS key (kmsKeyId)")
        return
    if args.resource_type != CACHE_REPLICATION_GROUP:
        return
    # A Global Datastore member inherits encryption from the datastore, whose
    # primary group is checked here and by `elasticache-global-datastore-encrypted`;
    # it may not turn it off.
    if args.props.get("globalReplicationGroupId"):
        if args.props.get("atRestEncryptionEnabled") is False:
            report_violation("atRestEncryptionEnabled must not be false")
        return
    if not _is_true(args.props.get("atRestEncryptionEnabled")):
        report_violation("atRestEncryptionEnabled must be true")


def elasticache_in_transit_and_auth(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Redis/Valkey groups take TLS only, and clients must authenticate (AUTH token or RBAC user group)."""
    if args.resource_type != CACHE_REPLICATION_GROUP:
        return
    props = args.props
    member = bool(props.get("globalReplicationGroupId"))
    if member:
        if props.get("transitEncryptionEnabled") is False:
            report_violation("transitEncryptionEnabled must not be false")
    elif not _is_true(props.get("transitEncryptionEnabled")):
        report_violation("transitEncryptionEnabled must be true")
    # `preferred` accepts plaintext connections next to TLS ones.
    if props.get("transitEncryptionMode") == "preferred":
        report_violation("transitEncryptionMode must be required, not preferred (which accepts plaintext)")
    if not props.get("authToken") and not props.get("userGroupIds"):
        report_violation("clients must authenticate: set authToken or userGroupIds")


def elasticache_no_standalone_cluster(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """A cache cluster outside a replication group has no replica, no failover, no encryption at rest."""
    if args.resource_type == CACHE_CLUSTER and not args.props.get("replicationGroupId"):
        report_violation(
            "a standalone cache cluster has no replica, no automatic failover and no encryption at rest;"
            " declare a replication group instead"
        )


def elasticache_global_datastore_encrypted(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """A Global Datastore takes its encryption from its primary group: that group must be in the stack, and pass."""
    resources = list(args.resources)
    groups = [r for r in resources if r.resource_type == CACHE_REPLICATION_GROUP]
    datastores = [r for r in resources if r.resource_type == CACHE_GLOBAL_GROUP]
    for datastore in datastores:
        primary_id = datastore.props.get("primaryReplicationGroupId")
        depends = {d.urn for d in (datastore.property_dependencies or {}).get("primaryReplicationGroupId", ())}
        primary = next(
            (g for g in groups if g.urn in depends or (primary_id and g.props.get("replicationGroupId") == primary_id)),
            None,
        )
        if primary is None:
            report_violation(
                f"global datastore {datastore.name}: its primary group {primary_id!r} is not declared in this stack,"
                " so its encryption cannot be checked",
                datastore.urn,
            )
        elif not (
            _is_true(primary.props.get("atRestEncryptionEnabled"))
            and _is_true(primary.props.get("transitEncryptionEnabled"))
        ):
            report_violation(
                f"global datastore {datastore.name}: primary group {primary.name} must be encrypted at rest and in"
                " transit (every member inherits it)",
                datastore.urn,
            )
    if not datastores:
        for member in (g for g in groups if g.props.get("globalReplicationGroupId")):
            report_violation(
                f"replication group {member.name} joins a global datastore this stack does not declare;"
                " its encryption cannot be checked",
                member.urn,
            )


# --- cluster -------------------------------------------------------------------------


def eks_secrets_encrypted(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != EKS_CLUSTER:
        return
    for config in _items(args.props.get("encryptionConfig")):
        provider = config.get("provider") or {}
        resources = config.get("resources") or []
        if "secrets" in resources and isinstance(provider, Mapping) and provider.get("keyArn"):
            return
    report_violation("Kubernetes secrets must be envelope-encrypted with a KMS key (encryptionConfig)")


def eks_endpoint_not_open(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """A public API endpoint only with a CIDR allow-list; AWS's default is public and open to 0.0.0.0/0."""
    if args.resource_type != EKS_CLUSTER:
        return
    vpc_config = (_items(args.props.get("vpcConfig")) or [{}])[0]
    public = vpc_config.get("endpointPublicAccess")
    # catalogue: eks.public-endpoint-default-open
    if public is False or (isinstance(public, str) and public.lower() == "false"):
        return
    cidrs = [c for c in vpc_config.get("publicAccessCidrs") or () if isinstance(c, str)]
    if not cidrs or any(c in WORLD_CIDRS for c in cidrs):
        report_violation(
            "the public API endpoint (endpointPublicAccess, true unless set false) needs publicAccessCidrs,"
            f" an allow-list without {' or '.join(WORLD_CIDRS)}"
        )


# --- IAM -------------------------------------------------------------------------------


def iam_roles_bounded(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every role carries the program's permissions boundary; no IAM user at all.

    The deploy role's own denies refuse the rest at apply time; this says so at preview, with the
    resource's name. catalogue: iam.permissions-boundary-condition-key
    """
    if args.resource_type == IAM_USER:
        report_violation("the program declares no IAM users: long-lived keys outlive every CI session")
        return
    if args.resource_type != IAM_ROLE:
        return
    boundary = args.props.get("permissionsBoundary")
    if not isinstance(boundary, str) or not boundary.endswith(f":policy/{ROLE_BOUNDARY_POLICY}"):
        report_violation(f"permissionsBoundary must be the {ROLE_BOUNDARY_POLICY} policy, got {boundary!r}")


# --- network -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ingress:
    protocol: str
    from_port: Any
    to_port: Any
    cidrs: tuple[str, ...]

    @property
    def world_open(self) -> bool:
        return any(c in WORLD_CIDRS for c in self.cidrs)

    @property
    def web_only(self) -> bool:
        """TCP on exactly one of the web ports."""
        return self.protocol in ("tcp", "6") and self.from_port == self.to_port and self.from_port in WEB_PORTS


def _ingress_of(resource_type: str, props: Mapping[str, Any]) -> list[_Ingress]:
    """Every ingress permission a security group, or one of its rule resources, declares."""
    if resource_type in (SECURITY_GROUP, DEFAULT_SECURITY_GROUP):
        return [
            _Ingress(
                str(rule.get("protocol", "")).lower(),
                rule.get("fromPort"),
                rule.get("toPort"),
                (*(rule.get("cidrBlocks") or ()), *(rule.get("ipv6CidrBlocks") or ())),
            )
            for rule in _items(props.get("ingress"))
        ]
    if resource_type == SECURITY_GROUP_RULE and props.get("type") == "ingress":
        cidrs = (*(props.get("cidrBlocks") or ()), *(props.get("ipv6CidrBlocks") or ()))
        return [_Ingress(str(props.get("protocol", "")).lower(), props.get("fromPort"), props.get("toPort"), cidrs)]
    if resource_type == SECURITY_GROUP_INGRESS_RULE:
        cidrs = tuple(c for c in (props.get("cidrIpv4"), props.get("cidrIpv6")) if c)
        return [_Ingress(str(props.get("ipProtocol", "")).lower(), props.get("fromPort"), props.get("toPort"), cidrs)]
    return []


def security_group_no_world_ingress(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Nothing is open to 0.0.0.0/0 or ::/0 except TCP 80/443 (checked against the load balancers per stack)."""
    for ingress in _ingress_of(args.resource_type, args.props):
        if ingress.world_open and not ingress.web_only:
            report_violation(
                f"ingress {ingress.protocol} {ingress.from_port}-{ingress.to_port} from"
                f" {', '.join(c for c in ingress.cidrs if c in WORLD_CIDRS)}: only a load balancer's TCP 80/443"
                " may be open to the internet"
            )


def security_group_world_web_only_on_load_balancers(
    args: StackValidationArgs, report_violation: ReportViolation
) -> None:
    """World-open TCP 80/443 is allowed only on a security group that a load balancer uses."""
    resources = list(args.resources)
    balancer_groups: set[str] = set()
    for balancer in (r for r in resources if r.resource_type in LOAD_BALANCERS):
        balancer_groups.update(g for g in balancer.props.get("securityGroups") or () if isinstance(g, str))
        balancer_groups.update(d.urn for d in (balancer.property_dependencies or {}).get("securityGroups", ()))
    for resource in resources:
        if not any(i.world_open and i.web_only for i in _ingress_of(resource.resource_type, resource.props)):
            continue
        if resource.resource_type in (SECURITY_GROUP, DEFAULT_SECURITY_GROUP):
            group_keys = {resource.urn}
        else:
            group_keys = {
                resource.props.get("securityGroupId"),
                *(d.urn for d in (resource.property_dependencies or {}).get("securityGroupId", ())),
            }
        if not (group_keys & balancer_groups):
            report_violation(
                f"{resource.name} opens TCP 80/443 to the internet on a security group no load balancer uses",
                resource.urn,
            )


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
    if not any(r.resource_type in RDS_DATABASES for r in args.resources):
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


def backup_vaults_locked(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    """Every backup vault carries a compliance-mode Vault Lock, so no admin or stolen role can erase it."""
    resources = list(args.resources)
    locks = [r for r in resources if r.resource_type == BACKUP_VAULT_LOCK]
    for vault in (r for r in resources if r.resource_type == BACKUP_VAULT):
        name = vault.props.get("name")
        lock = next(
            (
                lock
                for lock in locks
                if (name and lock.props.get("backupVaultName") == name)
                or vault.urn in {d.urn for d in (lock.property_dependencies or {}).get("backupVaultName", ())}
            ),
            None,
        )
        # catalogue: backup.vault-lock-compliance-mode
        if lock is None:
            report_violation(f"backup vault {name or vault.name} has no Vault Lock", vault.urn)
        elif lock.props.get("changeableForDays") is None:
            report_violation(
                f"backup vault {name or vault.name}: the lock is in governance mode (no changeableForDays),"
                " which a privileged user can remove; use compliance mode",
                vault.urn,
            )
        elif lock.props.get("minRetentionDays") is None:
            report_violation(f"backup vault {name or vault.name}: the lock sets no minRetentionDays", vault.urn)


# --- the rule set ------------------------------------------------------------------


def _days(default: int, low: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "default": default}


MANDATORY = EnforcementLevel.MANDATORY

RESOURCE_POLICIES: list[ResourceValidationPolicy] = [
    ResourceValidationPolicy(
        name="rds-encrypted-at-rest",
        description="RDS instances, clusters and global clusters are encrypted at rest with KMS.",
        validate=rds_encrypted_at_rest,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="rds-deletion-protection",
        description="RDS instances, clusters and global clusters have deletion protection on.",
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
        description="No RDS instance or Aurora cluster instance is publicly accessible.",
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
        description="S3 public access blocks (bucket and account) set all four flags.",
        validate=s3_public_access_blocked,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="elasticache-encrypted-at-rest",
        description="ElastiCache replication groups are encrypted at rest (members of a Global Datastore inherit it);"
        " serverless caches use a customer-managed key.",
        validate=elasticache_encrypted_at_rest,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="elasticache-in-transit-and-auth",
        description="ElastiCache replication groups require TLS and authenticated clients.",
        validate=elasticache_in_transit_and_auth,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="elasticache-no-standalone-cluster",
        description="No cache cluster outside a replication group (single node, no failover, not encrypted at rest).",
        validate=elasticache_no_standalone_cluster,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="eks-secrets-encrypted",
        description="EKS clusters envelope-encrypt Kubernetes secrets with KMS.",
        validate=eks_secrets_encrypted,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="eks-endpoint-not-open",
        description="An EKS public API endpoint only with a CIDR allow-list that excludes the whole internet.",
        validate=eks_endpoint_not_open,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="iam-roles-bounded",
        description=f"Every IAM role has the {ROLE_BOUNDARY_POLICY} permissions boundary; no IAM users.",
        validate=iam_roles_bounded,
        enforcement_level=MANDATORY,
    ),
    ResourceValidationPolicy(
        name="security-group-no-world-ingress",
        description="No ingress from 0.0.0.0/0 or ::/0 other than TCP 80/443.",
        validate=security_group_no_world_ingress,
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
        description="Every bucket (any type, however named) has SSE-KMS and a public access block;"
        " data buckets are replicated.",
        validate=s3_buckets_protected,
        enforcement_level=MANDATORY,
        config_schema=PolicyConfigSchema({"dataBucketPattern": {"type": "string", "default": "-data$"}}),
    ),
    StackValidationPolicy(
        name="elasticache-global-datastore-encrypted",
        description="A Global Datastore's primary group is declared in the stack and encrypted at rest and in transit.",
        validate=elasticache_global_datastore_encrypted,
        enforcement_level=MANDATORY,
    ),
    StackValidationPolicy(
        name="security-group-world-web-only-on-load-balancers",
        description="TCP 80/443 open to the internet only on security groups that load balancers use.",
        validate=security_group_world_web_only_on_load_balancers,
        enforcement_level=MANDATORY,
    ),
    StackValidationPolicy(
        name="backup-vaults-locked",
        description="Every backup vault has a compliance-mode Vault Lock with a minimum retention.",
        validate=backup_vaults_locked,
        enforcement_level=MANDATORY,
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
