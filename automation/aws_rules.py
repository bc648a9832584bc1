"""What AWS would refuse, checked on a declared program before anything is applied.

The recording mocks accept any combination of arguments; AWS does not. Each
rule here reads an `Evaluation` (what the program declared, with its config)
and returns the refusals AWS would answer with, in the words and with the
source of the catalogue entry it enforces:

    from automation.aws_rules import check_declared
    for refusal in check_declared(evaluation):
        print(refusal)            # "<urn>: <what>: <behaviour> [catalogue <id>; source: ...]"

`check_declared` is the one entry point: tests run it over every DR state, the
sandbox's applier runs it before applying a step, `drctl plan` can report it.
An empty list means no rule found anything, not that AWS will accept it all.
The rules are few and general (a key or certificate of another region, a replica's source,
a certificate's zone...), so a new resource is checked by what it references,
not by a case written for it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from automation import catalogue
from automation.evaluate import GLOBAL, DeclaredResource, Evaluation, mock_identity
from components.config import LOG_GROUP_RETENTION_DAYS, REPLICA_BACKUPS_MIN_POSTGRES

RDS_INSTANCE = "aws:rds/instance:Instance"
ROUTE53_ZONE = "aws:route53/zone:Zone"
ROUTE53_RECORD = "aws:route53/record:Record"
CERTIFICATE_VALIDATION = "aws:acm/certificateValidation:CertificateValidation"
METRIC_ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
BACKUP_PLAN = "aws:backup/plan:Plan"
BACKUP_SELECTION = "aws:backup/selection:Selection"
EKS_CLUSTER = "aws:eks/cluster:Cluster"
BUCKET_LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
BACKUP_VAULT = "aws:backup/vault:Vault"
BACKUP_VAULT_LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
RESTORE_TESTING_PLAN = "aws:backup/restoreTestingPlan:RestoreTestingPlan"
RESTORE_TESTING_SELECTION = "aws:backup/restoreTestingSelection:RestoreTestingSelection"
FIS_TEMPLATE = "aws:fis/experimentTemplate:ExperimentTemplate"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
AWS_PROVIDER = "pulumi:providers:aws"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
SCHEDULE = "aws:scheduler/schedule:Schedule"
EVENT_INVOKE_CONFIG = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
_RATE_EXPRESSION = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")

ROUTE53_METRICS_REGION = "us-east-1"
# Regional things a resource may only use in its own region: inputs naming them, by how the name ends
# (kmsKeyId, replicaKmsKeyId, kmsMasterKeyId, keyArn, certificateArn...), the ARN's service, and the entry.
_REGIONAL_REFERENCES = (
    (("kmskeyid", "kmskeyarn", "kmsmasterkeyid", "keyarn"), "kms", "kms.key-is-regional"),
    (("certificatearn",), "acm", "acm.certificate-is-regional"),
)
# What a Global Datastore member inherits and may not be created with (CreateReplicationGroup refuses them),
# as the declaration's input names; automaticFailoverEnabled is left out: the provider never sends it for a
# member. multiAzEnabled is on neither of AWS's lists for a secondary (catalogue entry below).
_DATASTORE_OWNED = (
    "engine",
    "engineVersion",
    "nodeType",
    "parameterGroupName",
    "atRestEncryptionEnabled",
    "transitEncryptionEnabled",
    "numNodeGroups",
    "securityGroupNames",
    "snapshotArns",
    "snapshotName",
    "multiAzEnabled",
)
_GLACIER_CLASSES = ("GLACIER", "GLACIER_IR", "DEEP_ARCHIVE")
# Services whose AWS Backup recovery points never go to cold storage (the ARN's service field).
_NO_COLD_STORAGE_SERVICES = frozenset({"rds", "s3"})
_RESTORE_TESTING_NAME = re.compile(r"^[A-Za-z0-9_]{1,50}$")
# CloudWatch evaluates an alarm over at most 7 days, and over 1 day when periods are under an hour.
_ALARM_SPAN_SECONDS, _SHORT_PERIOD_SPAN_SECONDS = 7 * 86400, 86400
# What a launch template may not carry for a managed node group (the node group sets them).
_NODE_GROUP_LAUNCH_TEMPLATE_PROHIBITED = (
    "iamInstanceProfile",
    "instanceInitiatedShutdownBehavior",
    "hibernationOptions",
)


@dataclass(frozen=True)
class Refusal:
    """One thing AWS would refuse, or never finish, in a declared program."""

    behaviour: str
    """The catalogue entry it enforces."""
    urn: str
    """The declared resource AWS would refuse."""
    message: str
    """`catalogue.refusal(behaviour, detail)`: the detail, then AWS's behaviour and its source."""

    def __str__(self) -> str:
        return self.message


class _Declared:
    """Lookups over one evaluation that several rules share."""

    def __init__(self, evaluation: Evaluation) -> None:
        self.evaluation = evaluation
        self.by_urn = evaluation.by_urn()
        self.by_arn = {
            mock_identity(r.type, r.name, r.inputs, r.region)[1]: r
            for r in evaluation.resources
            if r.custom and r.region != GLOBAL
        }

    def refusal(self, behaviour: str, resource: DeclaredResource, detail: str) -> Refusal:
        return Refusal(behaviour, resource.urn, catalogue.refusal(behaviour, f"{resource.urn}: {detail}"))

    def dependencies_of_type(self, resource: DeclaredResource, type_token: str) -> list[DeclaredResource]:
        return [
            self.by_urn[urn]
            for urn in resource.dependencies
            if urn in self.by_urn and self.by_urn[urn].type == type_token
        ]


Rule = Callable[[_Declared], Iterator[Refusal]]


def _replica_sources(declared: _Declared) -> Iterator[Refusal]:
    """A read replica's source: no RDS-managed password, automated backups on, and encryption it can follow."""
    for replica in declared.evaluation.of_type(RDS_INSTANCE):
        source_arn = replica.inputs.get("replicateSourceDb")
        source = declared.by_arn.get(source_arn) if isinstance(source_arn, str) else None
        if source is None:
            continue
        if source.inputs.get("manageMasterUserPassword"):
            yield declared.refusal(
                "rds.replica-source-managed-password",
                replica,
                f"CreateDBInstanceReadReplica of {source.name}, which manages its master password in Secrets Manager",
            )
        if source.inputs.get("backupRetentionPeriod") == 0:
            yield declared.refusal(
                "rds.replica-source-needs-backups",
                replica,
                f"CreateDBInstanceReadReplica of {source.name}, whose backup retention is 0",
            )
        if (
            source.inputs.get("storageEncrypted")
            and replica.region != source.region
            and not replica.inputs.get("kmsKeyId")
        ):
            yield declared.refusal(
                "rds.replica-kms-key-in-own-region",
                replica,
                f"encrypted source {source.name} in {source.region}, and no kmsKeyId of {replica.region}",
            )


def _references_to_other_regions(declared: _Declared) -> Iterator[Refusal]:
    """Every KMS key or ACM certificate a resource names is in the region of what uses it.

    That region is the resource's own, or the one the surrounding object names: a Secrets Manager
    replica's `region`, a replication destination's `bucket`.
    """
    for resource in declared.evaluation.resources:
        if not resource.custom or resource.region in (None, GLOBAL):
            continue
        for path, arn, expected in _regional_arns(declared, resource.inputs, resource.region or "", ""):
            service, arn_region = arn.split(":")[2:4]
            behaviour = next(entry for _, svc, entry in _REGIONAL_REFERENCES if svc == service)
            if arn_region != expected:
                yield declared.refusal(behaviour, resource, f"{path} is in {arn_region}; what uses it is in {expected}")


def _regional_arns(declared: _Declared, value: Any, region: str, path: str) -> Iterator[tuple[str, str, str]]:
    """(input path, ARN, the region it must be in) of every regional reference under `value`."""
    if isinstance(value, Mapping):
        region = _region_named_by(declared, value) or region
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if isinstance(item, str) and _is_regional_reference(str(key), item):
                yield child, item, region
            else:
                yield from _regional_arns(declared, item, region, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _regional_arns(declared, item, region, f"{path}[{index}]")


def _is_regional_reference(key: str, value: str) -> bool:
    parts = value.split(":")
    return (
        len(parts) > 3
        and parts[0] == "arn"
        and any(key.lower().endswith(suffixes) and parts[2] == service for suffixes, service, _ in _REGIONAL_REFERENCES)
    )


def _region_named_by(declared: _Declared, mapping: Mapping[str, Any]) -> str | None:
    if isinstance(mapping.get("region"), str):
        return mapping["region"]
    bucket = declared.by_arn.get(mapping.get("bucket")) if isinstance(mapping.get("bucket"), str) else None
    return bucket.region if bucket is not None else None


def _certificates_through_undelegated_zones(declared: _Declared) -> Iterator[Refusal]:
    """ACM validates a DNS record only through a zone the parent domain delegates to."""
    cfg = declared.evaluation.config
    for validation in declared.evaluation.of_type(CERTIFICATE_VALIDATION):
        for record in declared.dependencies_of_type(validation, ROUTE53_RECORD):
            for zone in declared.dependencies_of_type(record, ROUTE53_ZONE):
                if not cfg.zone_delegated:
                    yield declared.refusal(
                        "acm.dns-validation-needs-delegated-zone",
                        validation,
                        f"validation record {record.name} is in zone {zone.inputs.get('name')}, created by this "
                        "stack and not confirmed delegated (zoneDelegated: false)",
                    )


def _alarm_regions(declared: _Declared) -> Iterator[Refusal]:
    """Route53 health-check metrics exist in us-east-1 only; an alarm's SNS actions are in its own region."""
    for alarm in declared.evaluation.of_type(METRIC_ALARM):
        namespaces = {alarm.inputs.get("namespace")} | {
            (query.get("metric") or {}).get("namespace") for query in alarm.inputs.get("metricQueries") or []
        }
        if "AWS/Route53" in namespaces and alarm.region != ROUTE53_METRICS_REGION:
            yield declared.refusal(
                "cloudwatch.route53-metrics-in-us-east-1",
                alarm,
                f"an alarm on AWS/Route53 metrics in {alarm.region}",
            )
        for action in [*(alarm.inputs.get("alarmActions") or []), *(alarm.inputs.get("okActions") or [])]:
            parts = action.split(":") if isinstance(action, str) else []
            if len(parts) > 3 and parts[2] == "sns" and parts[3] != alarm.region:
                yield declared.refusal(
                    "cloudwatch.alarm-actions-in-own-region",
                    alarm,
                    f"action {action} is a topic of {parts[3]}; the alarm is in {alarm.region}",
                )


def _global_datastore_members(declared: _Declared) -> Iterator[Refusal]:
    """A secondary member takes engine, version, node type and encryption from its Global Datastore."""
    for group in declared.evaluation.of_type(REPLICATION_GROUP):
        if not group.inputs.get("globalReplicationGroupId"):
            continue
        owned = [argument for argument in _DATASTORE_OWNED if argument in group.inputs]
        if owned:
            yield declared.refusal(
                "elasticache.global-datastore-member-inherits",
                group,
                f"a Global Datastore member declaring {', '.join(owned)}",
            )


def _backup_rules(declared: _Declared) -> Iterator[Refusal]:
    """Cold storage: 90 days at least, and ignored for RDS and S3; a read replica is left out of selections."""
    plan_urns = {
        mock_identity(p.type, p.name, p.inputs, p.region)[0]: p.urn for p in declared.evaluation.of_type(BACKUP_PLAN)
    }
    selected_types: dict[str, set[str]] = {}
    for selection in declared.evaluation.of_type(BACKUP_SELECTION):
        plan_urn = plan_urns.get(selection.inputs.get("planId") or "", "")
        for arn in selection.inputs.get("resources") or []:
            service = arn.split(":")[2] if isinstance(arn, str) and arn.count(":") > 2 else "?"
            selected_types.setdefault(plan_urn, set()).add(service)
    for plan in declared.evaluation.of_type(BACKUP_PLAN):
        for rule in plan.inputs.get("rules") or []:
            lifecycles = [("lifecycle", rule.get("lifecycle"))] + [
                (f"copyActions[{index}].lifecycle", action.get("lifecycle"))
                for index, action in enumerate(rule.get("copyActions") or [])
            ]
            for where, lifecycle in lifecycles:
                cold, delete = (lifecycle or {}).get("coldStorageAfter"), (lifecycle or {}).get("deleteAfter")
                if cold and delete is not None and delete < cold + 90:
                    yield declared.refusal(
                        "backup.cold-storage-minimum-90-days",
                        plan,
                        f"rule {rule.get('ruleName')} {where}: deleted after {delete:g} days, "
                        f"{delete - cold:g} of them in cold storage",
                    )
                if cold and selected_types.get(plan.urn, set()) <= _NO_COLD_STORAGE_SERVICES:
                    yield declared.refusal(
                        "backup.cold-storage-not-for-rds-or-s3",
                        plan,
                        f"rule {rule.get('ruleName')} {where}: cold storage after {cold:g} days, for a plan that "
                        f"selects {', '.join(sorted(selected_types.get(plan.urn, set()))) or 'nothing'} only",
                    )
    for selection in declared.evaluation.of_type(BACKUP_SELECTION):
        for arn in selection.inputs.get("resources") or []:
            selected = declared.by_arn.get(arn)
            if selected is not None and selected.type == RDS_INSTANCE and selected.inputs.get("replicateSourceDb"):
                yield declared.refusal("backup.no-read-replica", selection, f"selects {selected.name}, a read replica")


def _open_public_endpoints(declared: _Declared) -> Iterator[Refusal]:
    """A public EKS endpoint without an allow-list is open to the whole internet."""
    for cluster in declared.evaluation.of_type(EKS_CLUSTER):
        vpc = cluster.inputs.get("vpcConfig") or {}
        if not vpc.get("endpointPublicAccess"):
            continue
        blocks = vpc.get("publicAccessCidrs") or []
        if not blocks or any(ipaddress.ip_network(block).prefixlen == 0 for block in blocks):
            yield declared.refusal(
                "eks.public-endpoint-open-by-default",
                cluster,
                f"a public endpoint with publicAccessCidrs {blocks or 'unset'}",
            )


def _lifecycle_transitions(declared: _Declared) -> Iterator[Refusal]:
    """S3 moves nothing to Standard-IA before 30 days, nor out of it within 30 days."""
    for lifecycle in declared.evaluation.of_type(BUCKET_LIFECYCLE):
        for rule in lifecycle.inputs.get("rules") or []:
            days = {t.get("storageClass"): t.get("days") for t in rule.get("transitions") or []}
            ia = days.get("STANDARD_IA")
            too_early = ia is not None and ia < 30
            glacier = [d for c, d in days.items() if c in _GLACIER_CLASSES and d is not None]
            too_soon = ia is not None and any(d < ia + 30 for d in glacier)
            if too_early or too_soon:
                yield declared.refusal(
                    "s3.lifecycle-ia-minimum-30-days", lifecycle, f"rule {rule.get('id')} transitions {days}"
                )


def _vault_locks(declared: _Declared) -> Iterator[Refusal]:
    """A compliance lock has 3 days of grace at least; a job kept outside a locked vault's range fails."""
    locks_by_vault: dict[str, DeclaredResource] = {}
    for lock in declared.evaluation.of_type(BACKUP_VAULT_LOCK):
        changeable = lock.inputs.get("changeableForDays")
        if changeable is not None and changeable < 3:
            yield declared.refusal(
                "backup.vault-lock-compliance-mode", lock, f"changeableForDays {changeable}, under the 3 days allowed"
            )
        locks_by_vault[f"{lock.region}/{lock.inputs.get('backupVaultName')}"] = lock
    vault_keys = {
        mock_identity(v.type, v.name, v.inputs, v.region)[1]: f"{v.region}/{v.inputs.get('name')}"
        for v in declared.evaluation.of_type(BACKUP_VAULT)
    }
    for plan in declared.evaluation.of_type(BACKUP_PLAN):
        for rule in plan.inputs.get("rules") or []:
            jobs = [(f"{plan.region}/{rule.get('targetVaultName')}", rule.get("lifecycle"), "backups")] + [
                (vault_keys.get(action.get("destinationVaultArn"), ""), action.get("lifecycle"), "copies")
                for action in rule.get("copyActions") or []
            ]
            for vault, lifecycle, what in jobs:
                lock = locks_by_vault.get(vault)
                kept = (lifecycle or {}).get("deleteAfter")
                if lock is None or kept is None:
                    continue
                low, high = lock.inputs.get("minRetentionDays"), lock.inputs.get("maxRetentionDays")
                if (low is not None and kept < low) or (high is not None and kept > high):
                    yield declared.refusal(
                        "backup.vault-lock-retention-range",
                        plan,
                        f"rule {rule.get('ruleName')} keeps its {what} {kept:g} days; the lock on {vault} allows "
                        f"{low}-{high} days",
                    )


def _restore_testing_names(declared: _Declared) -> Iterator[Refusal]:
    """Restore testing plans and selections are named with letters, digits and underscores, 50 at most."""
    for resource in [
        *declared.evaluation.of_type(RESTORE_TESTING_PLAN),
        *declared.evaluation.of_type(RESTORE_TESTING_SELECTION),
    ]:
        name = resource.inputs.get("name")
        if isinstance(name, str) and not _RESTORE_TESTING_NAME.match(name):
            yield declared.refusal("backup.restore-testing-plan-limits", resource, f"name {name!r}")


def _fis_stop_conditions(declared: _Declared) -> Iterator[Refusal]:
    """An experiment template stops on alarms of its own region."""
    for template in declared.evaluation.of_type(FIS_TEMPLATE):
        for condition in template.inputs.get("stopConditions") or []:
            arn = condition.get("value")
            parts = arn.split(":") if isinstance(arn, str) else []
            if condition.get("source") == "aws:cloudwatch:alarm" and len(parts) > 3 and parts[3] != template.region:
                yield declared.refusal(
                    "fis.stop-condition-alarm", template, f"stop condition {arn} is an alarm of {parts[3]}"
                )


def _alarm_evaluation_range(declared: _Declared) -> Iterator[Refusal]:
    """PutMetricAlarm refuses a period times evaluation periods over 7 days (1 day below hourly periods)."""
    for alarm in declared.evaluation.of_type(METRIC_ALARM):
        periods = alarm.inputs.get("evaluationPeriods") or 1
        lengths = [alarm.inputs.get("period")] + [
            (query.get("metric") or {}).get("period") or query.get("period")
            for query in alarm.inputs.get("metricQueries") or []
        ]
        for period in (p for p in lengths if isinstance(p, (int, float))):
            limit = _ALARM_SPAN_SECONDS if period >= 3600 else _SHORT_PERIOD_SPAN_SECONDS
            if period * periods > limit:
                yield declared.refusal(
                    "cloudwatch.alarm-evaluation-range",
                    alarm,
                    f"{periods} periods of {period:g} s span {period * periods / 86400:g} days",
                )
                break


def _node_group_launch_templates(declared: _Declared) -> Iterator[Refusal]:
    """A managed node group's launch template leaves the instance profile and lifecycle to EKS."""
    templates = {
        mock_identity(t.type, t.name, t.inputs, t.region)[0]: t for t in declared.evaluation.of_type(LAUNCH_TEMPLATE)
    }
    for group in declared.evaluation.of_type(NODE_GROUP):
        template = templates.get(((group.inputs.get("launchTemplate") or {}).get("id")) or "")
        prohibited = [key for key in _NODE_GROUP_LAUNCH_TEMPLATE_PROHIBITED if template and key in template.inputs]
        if prohibited:
            yield declared.refusal(
                "eks.node-group-launch-template-rules",
                group,
                f"launch template {template.name} sets {', '.join(prohibited)}",
            )


def _providers_that_call_aws(declared: _Declared) -> Iterator[Refusal]:
    """No provider calls AWS to be configured, and none but the DR region's manages a global resource.

    An emergency failover configures the failed region's provider too; a global resource declared
    through it would need that provider in the targeted update.
    """
    dr_region = declared.evaluation.config.dr_region
    providers = declared.evaluation.of_type(AWS_PROVIDER)
    for provider in providers:
        calls = [
            f"{key} {provider.inputs.get(key) or 'unset'}"
            for key in ("skipCredentialsValidation", "skipRequestingAccountId")
            if str(provider.inputs.get(key)).lower() != "true"
        ]
        if provider.inputs.get("stsRegion") != dr_region:
            calls.append(f"stsRegion {provider.inputs.get('stsRegion') or 'unset'} (not {dr_region})")
        if calls:
            yield declared.refusal(
                "pulumi-aws.provider-configure-calls-aws", provider, f"a provider configured with {', '.join(calls)}"
            )
    regions = {provider.urn: provider.region for provider in providers}
    for resource in declared.evaluation.resources:
        if resource.region == GLOBAL and regions.get(resource.provider, dr_region) != dr_region:
            yield declared.refusal(
                "pulumi-aws.provider-configure-calls-aws",
                resource,
                f"a global resource declared through the provider of {regions[resource.provider]}, not the DR "
                f"region's ({dr_region}): a failover out of that region would have to configure it",
            )


def _replicas(declared: _Declared) -> Iterator[Refusal]:
    """A replica is deleted without a final snapshot, and keeps automated backups only from PostgreSQL 14.1 on."""
    for replica in declared.evaluation.of_type(RDS_INSTANCE):
        if not replica.inputs.get("replicateSourceDb"):
            continue
        if not replica.inputs.get("skipFinalSnapshot") or replica.inputs.get("finalSnapshotIdentifier"):
            yield declared.refusal(
                "rds.delete-replica-refuses-final-snapshot",
                replica,
                f"a read replica declared with skipFinalSnapshot {replica.inputs.get('skipFinalSnapshot')} and "
                f"finalSnapshotIdentifier {replica.inputs.get('finalSnapshotIdentifier')}: removing it would fail",
            )
        version = str(replica.inputs.get("engineVersion") or "")
        major, _, minor = version.partition(".")
        known = (int(major), int(minor) if minor.isdigit() else 1) if major.isdigit() else None
        if replica.inputs.get("backupRetentionPeriod") and known and known < REPLICA_BACKUPS_MIN_POSTGRES:
            yield declared.refusal(
                "rds.postgres-replica-automated-backups",
                replica,
                f"a PostgreSQL {version} read replica with backupRetentionPeriod "
                f"{replica.inputs.get('backupRetentionPeriod')}",
            )


def _log_group_retention(declared: _Declared) -> Iterator[Refusal]:
    """CloudWatch Logs keeps a group for one of its fixed periods only (PutRetentionPolicy refuses others)."""
    for group in declared.evaluation.of_type(LOG_GROUP):
        days = group.inputs.get("retentionInDays")
        if days is not None and days not in LOG_GROUP_RETENTION_DAYS:
            yield declared.refusal("cloudwatch.logs-retention-values", group, f"retentionInDays {days}")


def _schedules(declared: _Declared) -> Iterator[Refusal]:
    """Scheduler takes rate(N unit) with a positive N (singular unit for 1) and bounded retries."""
    for schedule in declared.evaluation.of_type(SCHEDULE):
        expression = str(schedule.inputs.get("scheduleExpression") or "")
        found = _RATE_EXPRESSION.match(expression) if expression.startswith("rate(") else None
        if expression.startswith("rate(") and (
            found is None or int(found.group(1)) < 1 or (int(found.group(1)) == 1) != (not found.group(2).endswith("s"))
        ):
            yield declared.refusal(
                "scheduler.rate-one-minute-at-most-once-a-minute", schedule, f"scheduleExpression {expression}"
            )
        policy = (schedule.inputs.get("target") or {}).get("retryPolicy") or {}
        age, attempts = policy.get("maximumEventAgeInSeconds"), policy.get("maximumRetryAttempts")
        if (age is not None and not 60 <= age <= 86400) or (attempts is not None and not 0 <= attempts <= 185):
            yield declared.refusal(
                "scheduler.rate-one-minute-at-most-once-a-minute",
                schedule,
                f"retryPolicy maximumEventAgeInSeconds {age}, maximumRetryAttempts {attempts}",
            )


def _async_invoke_configs(declared: _Declared) -> Iterator[Refusal]:
    """PutFunctionEventInvokeConfig takes 0-2 retries and an event age of 60-21600 seconds."""
    for config in declared.evaluation.of_type(EVENT_INVOKE_CONFIG):
        age, attempts = config.inputs.get("maximumEventAgeInSeconds"), config.inputs.get("maximumRetryAttempts")
        if (age is not None and not 60 <= age <= 21600) or (attempts is not None and not 0 <= attempts <= 2):
            yield declared.refusal(
                "lambda.async-invoke-retries",
                config,
                f"maximumEventAgeInSeconds {age}, maximumRetryAttempts {attempts}",
            )


RULES: tuple[Rule, ...] = (
    _providers_that_call_aws,
    _replicas,
    _log_group_retention,
    _replica_sources,
    _references_to_other_regions,
    _certificates_through_undelegated_zones,
    _alarm_regions,
    _global_datastore_members,
    _backup_rules,
    _open_public_endpoints,
    _lifecycle_transitions,
    _vault_locks,
    _restore_testing_names,
    _fis_stop_conditions,
    _alarm_evaluation_range,
    _node_group_launch_templates,
    _schedules,
    _async_invoke_configs,
)


def check_declared(evaluation: Evaluation) -> list[Refusal]:
    """Every refusal the catalogued rules find in a declared program, in declaration order of the rules."""
    declared = _Declared(evaluation)
    return [refusal for rule in RULES for refusal in rule(declared)]
