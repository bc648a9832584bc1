"""The policy rules, called as the engine calls them, and over the program's own resources."""

from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)

from automation.plan import policy_resources
from policy.policies import (
    ALL_POLICIES,
    RESOURCE_POLICIES,
    STACK_POLICIES,
    backup_rule_kind,
    check_resources,
    check_stack,
    default_config,
)
from tests.conftest import STATES, evaluate_state

OPTIONS = PolicyResourceOptions(False, [], False, [], PolicyCustomTimeouts(0, 0, 0), [])
RDS = "aws:rds/instance:Instance"
BACKUP_PLAN = "aws:backup/plan:Plan"
PRIMARY_VAULT = "arn:aws:backup:us-east-1:123456789012:backup-vault:acme-drp-use1-vault"
DR_VAULT = "arn:aws:backup:us-west-2:123456789012:backup-vault:acme-drp-usw2-vault"


def violations(policy_name: str, type_token: str, props: dict[str, Any], region: str = "us-east-1") -> list[str]:
    """Messages a resource rule reports for one resource, with the config the engine would pass."""
    (policy,) = [p for p in RESOURCE_POLICIES if p.name == policy_name]
    provider = PolicyProviderResource("pulumi:providers:aws", {"region": region}, "urn:provider", "aws-primary")
    urn = f"urn:pulumi:prod::dr-platform::{type_token}::r"
    args = ResourceValidationArgs(type_token, props, urn, "r", OPTIONS, provider, default_config(policy))
    found: list[str] = []
    policy.validate(args, lambda message, urn=None: found.append(message))
    return found


def stack_violations(policy_name: str, resources: list[PolicyResource]) -> list[str]:
    (policy,) = [p for p in STACK_POLICIES if p.name == policy_name]
    found: list[str] = []
    policy.validate(StackValidationArgs(resources, default_config(policy)), lambda m, urn=None: found.append(m))
    return found


def resource(type_token: str, name: str, props: dict[str, Any]) -> PolicyResource:
    urn = f"urn:pulumi:prod::dr-platform::{type_token}::{name}"
    return PolicyResource(type_token, props, urn, name, OPTIONS, None, None, [], {})


WRITER = {"storageEncrypted": True, "deletionProtection": True, "backupRetentionPeriod": 7, "publiclyAccessible": False}
REPLICA = {"replicateSourceDb": "arn:aws:rds:us-east-1:1:db:w", "kmsKeyId": "arn:aws:kms:us-west-2:1:key/k"}


@pytest.mark.parametrize(
    ("policy", "props", "expected"),
    [
        ("rds-encrypted-at-rest", WRITER, []),
        ("rds-encrypted-at-rest", REPLICA, []),
        ("rds-encrypted-at-rest", {**WRITER, "storageEncrypted": False}, ["storage must be encrypted"]),
        ("rds-encrypted-at-rest", {"replicateSourceDb": "arn:x"}, ["storage must be encrypted"]),
        ("rds-deletion-protection", WRITER, []),
        ("rds-deletion-protection", {**WRITER, "deletionProtection": False}, ["deletionProtection must be true"]),
        ("rds-backup-retention", WRITER, []),
        ("rds-backup-retention", REPLICA, []),
        ("rds-backup-retention", {**WRITER, "backupRetentionPeriod": 3}, ["at least 7 days, got 3"]),
        ("rds-backup-retention", {"storageEncrypted": True}, ["at least 7 days, got None"]),
        ("rds-not-publicly-accessible", WRITER, []),
        ("rds-not-publicly-accessible", {**WRITER, "publiclyAccessible": True}, ["publiclyAccessible must not"]),
    ],
)
def test_database_rules(policy, props, expected):
    found = violations(policy, RDS, props)
    assert len(found) == len(expected)
    assert all(e in f for e, f in zip(expected, found, strict=True))


def test_database_rules_ignore_other_types():
    assert violations("rds-deletion-protection", "aws:s3/bucket:Bucket", {}) == []


SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"


def sse_rules(algorithm: str) -> dict[str, Any]:
    return {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": algorithm, "kmsMasterKeyId": "k"}}]}


def test_bucket_encryption_must_be_kms():
    assert violations("s3-encrypted-with-kms", SSE, sse_rules("aws:kms")) == []
    assert violations("s3-encrypted-with-kms", SSE, sse_rules("aws:kms:dsse")) == []
    assert "SSE-KMS" in violations("s3-encrypted-with-kms", SSE, sse_rules("AES256"))[0]
    assert violations("s3-encrypted-with-kms", SSE, {"rules": []}) == ["declares no encryption rule"]


ALL_BLOCKED = dict.fromkeys(("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"), True)


def test_public_access_blocks_set_all_four_flags():
    assert violations("s3-public-access-blocked", PAB, ALL_BLOCKED) == []
    (message,) = violations("s3-public-access-blocked", PAB, {**ALL_BLOCKED, "restrictPublicBuckets": False})
    assert "restrictPublicBuckets" in message


def test_cache_encryption_at_rest_except_for_global_datastore_secondaries():
    group = "aws:elasticache/replicationGroup:ReplicationGroup"
    assert violations("elasticache-encrypted-at-rest", group, {"atRestEncryptionEnabled": True}) == []
    assert violations("elasticache-encrypted-at-rest", group, {"atRestEncryptionEnabled": "true"}) == []
    assert violations("elasticache-encrypted-at-rest", group, {"globalReplicationGroupId": "ldgnf-redis"}) == []
    assert violations("elasticache-encrypted-at-rest", group, {"atRestEncryptionEnabled": False}) == [
        "atRestEncryptionEnabled must be true"
    ]


def test_eks_secrets_are_envelope_encrypted():
    cluster = "aws:eks/cluster:Cluster"
    good = {"encryptionConfig": {"provider": {"keyArn": "arn:aws:kms:us-east-1:1:key/k"}, "resources": ["secrets"]}}
    assert violations("eks-secrets-encrypted", cluster, good) == []
    assert violations("eks-secrets-encrypted", cluster, {}) != []
    no_key = {"encryptionConfig": {"provider": {}, "resources": ["secrets"]}}
    assert violations("eks-secrets-encrypted", cluster, no_key) != []


def rule(name: str, schedule: str, days: int, copy_to: str | None = DR_VAULT, continuous: bool = False) -> dict:
    return {
        "ruleName": name,
        "schedule": schedule,
        "enableContinuousBackup": continuous,
        "lifecycle": {"deleteAfter": days},
        "copyActions": [{"destinationVaultArn": copy_to}] if copy_to else [],
    }


GOOD_RULES = [
    rule("daily", "cron(0 5 ? * * *)", 7),
    rule("weekly", "cron(0 6 ? * SUN *)", 28),
    rule("continuous", "cron(0 5 ? * * *)", 1, continuous=True),
]


def test_backup_rules_are_classified_by_schedule():
    assert [backup_rule_kind(r) for r in GOOD_RULES] == ["daily", "weekly", "continuous"]
    assert backup_rule_kind(rule("monthly", "cron(0 5 1 * ? *)", 365)) is None


def test_backup_plan_meeting_the_requirements_passes():
    assert violations("backup-plan-retention", BACKUP_PLAN, {"rules": GOOD_RULES}) == []


@pytest.mark.parametrize(
    ("bad_rule", "expected"),
    [
        (rule("daily", "cron(0 5 ? * * *)", 3), "daily rule daily must keep recovery points at least 7 days"),
        (rule("weekly", "cron(0 6 ? * SUN *)", 14), "weekly rule weekly must keep recovery points at least 28"),
        (rule("continuous", "cron(0 5 ? * * *)", 36, continuous=True), "AWS Backup allows 35"),
        (rule("daily", "cron(0 5 ? * * *)", 7, copy_to=None), "copy recovery points to a vault in another region"),
        (rule("daily", "cron(0 5 ? * * *)", 7, copy_to=PRIMARY_VAULT), "vault in another region"),
    ],
)
def test_backup_plan_failures(bad_rule, expected):
    found = violations("backup-plan-retention", BACKUP_PLAN, {"rules": [bad_rule]}, region="us-east-1")
    assert len(found) == 1 and expected in found[0]


def bucket_set(*, block: bool = True, encrypt: bool = True, replicate: bool = True) -> list[PolicyResource]:
    names = ("acme-drp-use1-data", "acme-drp-usw2-data")
    found = [resource("aws:s3/bucket:Bucket", n, {"bucket": n}) for n in names]
    for n in names:
        if encrypt:
            found.append(resource(SSE, f"{n}-sse", {"bucket": n, **sse_rules("aws:kms")}))
        if block:
            found.append(resource(PAB, f"{n}-pab", {"bucket": n, **ALL_BLOCKED}))
    if replicate:
        destination = {"bucket": f"arn:aws:s3:::{names[1]}"}
        config = {"bucket": names[0], "rules": [{"status": "Enabled", "destination": destination}]}
        found.append(resource("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "replication", config))
    return found


def test_protected_and_replicated_buckets_pass():
    assert stack_violations("s3-buckets-protected", bucket_set()) == []


def test_buckets_without_public_access_block_or_encryption_fail():
    assert len(stack_violations("s3-buckets-protected", bucket_set(block=False))) == 2
    assert all("SSE-KMS" in m for m in stack_violations("s3-buckets-protected", bucket_set(encrypt=False)))


def test_unreplicated_data_buckets_fail_and_other_buckets_need_not_replicate():
    found = stack_violations("s3-buckets-protected", bucket_set(replicate=False))
    assert len(found) == 2 and all("neither the source nor the destination" in m for m in found)
    logs = [resource("aws:s3/bucket:Bucket", "logs", {"bucket": "acme-drp-use1-logs"})]
    logs += [resource(SSE, "s", {"bucket": "acme-drp-use1-logs", **sse_rules("aws:kms")})]
    logs += [resource(PAB, "p", {"bucket": "acme-drp-use1-logs", **ALL_BLOCKED})]
    assert stack_violations("s3-buckets-protected", logs) == []


def test_databases_need_daily_weekly_and_continuous_backup_rules():
    database = resource(RDS, "db", WRITER)
    plan = resource(BACKUP_PLAN, "plan", {"rules": GOOD_RULES})
    assert stack_violations("backups-cover-databases", [database, plan]) == []
    assert stack_violations("backups-cover-databases", []) == []
    (message,) = stack_violations("backups-cover-databases", [database, resource(BACKUP_PLAN, "p", {"rules": []})])
    assert "no daily, weekly, continuous backup rule" in message


def test_policy_names_are_unique_and_every_rule_is_mandatory():
    names = [p.name for p in ALL_POLICIES]
    assert len(names) == len(set(names))
    assert all(p.enforcement_level.value == "mandatory" for p in ALL_POLICIES)


@pytest.mark.parametrize("state", STATES)
def test_the_programs_own_resources_pass_every_rule(state):
    resources = policy_resources(evaluate_state(state))
    types = {r.resource_type for r in resources}
    # The rules would pass vacuously on a program that declares none of what they check.
    assert {RDS, "aws:s3/bucket:Bucket", BACKUP_PLAN, "aws:eks/cluster:Cluster"} <= types
    assert [(v.policy, v.urn, v.message) for v in check_resources(resources)] == []
    assert [(v.policy, v.message) for v in check_stack(resources)] == []
