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


def test_cache_encryption_at_rest_inherited_by_global_datastore_members_but_never_switched_off():
    group = "aws:elasticache/replicationGroup:ReplicationGroup"
    assert violations("elasticache-encrypted-at-rest", group, {"atRestEncryptionEnabled": True}) == []
    assert violations("elasticache-encrypted-at-rest", group, {"atRestEncryptionEnabled": "true"}) == []
    assert violations("elasticache-encrypted-at-rest", group, {"globalReplicationGroupId": "ldgnf-redis"}) == []
    member_off = {"globalReplicationGroupId": "ldgnf-redis", "atRestEncryptionEnabled": False}
    assert violations("elasticache-encrypted-at-rest", group, member_off) == [
        "atRestEncryptionEnabled must not be false"
    ]
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


# --- issue 13.13: the holes, one rule at a time; each violating resource fails, each compliant one passes ----------


@pytest.mark.parametrize(
    ("policy", "type_token", "props", "expected"),
    [
        # an Aurora cluster instance that is publicly accessible
        ("rds-not-publicly-accessible", "aws:rds/clusterInstance:ClusterInstance", {"publiclyAccessible": True}, 1),
        ("rds-not-publicly-accessible", "aws:rds/clusterInstance:ClusterInstance", {"publiclyAccessible": False}, 0),
        # an unencrypted global cluster without deletion protection
        ("rds-encrypted-at-rest", "aws:rds/globalCluster:GlobalCluster", {"engine": "aurora-postgresql"}, 1),
        ("rds-encrypted-at-rest", "aws:rds/globalCluster:GlobalCluster", {"storageEncrypted": True}, 0),
        ("rds-encrypted-at-rest", "aws:rds/globalCluster:GlobalCluster", {"sourceDbClusterIdentifier": "arn:c"}, 0),
        ("rds-deletion-protection", "aws:rds/globalCluster:GlobalCluster", {"storageEncrypted": True}, 1),
        ("rds-deletion-protection", "aws:rds/globalCluster:GlobalCluster", {"deletionProtection": True}, 0),
        ("rds-deletion-protection", "aws:rds/cluster:Cluster", {"deletionProtection": False}, 1),
        ("rds-encrypted-at-rest", "aws:rds/cluster:Cluster", {"storageEncrypted": False}, 1),
        ("rds-backup-retention", "aws:rds/cluster:Cluster", {"backupRetentionPeriod": 1}, 1),
        ("rds-backup-retention", "aws:rds/cluster:Cluster", {"replicationSourceIdentifier": "arn:c"}, 0),
    ],
)
def test_every_rds_kind_is_covered(policy, type_token, props, expected):
    assert len(violations(policy, type_token, props)) == expected


GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
SECURE_GROUP = {"atRestEncryptionEnabled": True, "transitEncryptionEnabled": True, "authToken": "[secret]"}


@pytest.mark.parametrize(
    ("props", "expected"),
    [
        (SECURE_GROUP, []),
        ({**SECURE_GROUP, "authToken": None, "userGroupIds": ["app-users"]}, []),
        ({**SECURE_GROUP, "transitEncryptionEnabled": False}, ["transitEncryptionEnabled must be true"]),
        ({**SECURE_GROUP, "transitEncryptionMode": "preferred"}, ["transitEncryptionMode must be required"]),
        ({**SECURE_GROUP, "authToken": None}, ["clients must authenticate"]),
        # a Global Datastore member inherits TLS; it still authenticates and never switches TLS off
        ({"globalReplicationGroupId": "ldgnf-redis", "authToken": "[secret]"}, []),
        ({"globalReplicationGroupId": "ldgnf-redis"}, ["clients must authenticate"]),
        (
            {"globalReplicationGroupId": "ldgnf-redis", "authToken": "t", "transitEncryptionEnabled": False},
            ["transitEncryptionEnabled must not be false"],
        ),
    ],
)
def test_redis_takes_tls_and_authenticated_clients_only(props, expected):
    found = violations("elasticache-in-transit-and-auth", GROUP, props)
    assert len(found) == len(expected) and all(m.startswith(e) for m, e in zip(found, expected, strict=True))


def test_a_standalone_cache_cluster_fails_and_a_replication_group_member_passes():
    cluster = "aws:elasticache/cluster:Cluster"
    assert violations("elasticache-no-standalone-cluster", cluster, {"engine": "redis", "numCacheNodes": 1}) != []
    assert violations("elasticache-no-standalone-cluster", cluster, {"replicationGroupId": "acme-redis"}) == []


def test_a_serverless_cache_uses_a_customer_managed_key():
    serverless = "aws:elasticache/serverlessCache:ServerlessCache"
    assert violations("elasticache-encrypted-at-rest", serverless, {"engine": "valkey"}) != []
    assert violations("elasticache-encrypted-at-rest", serverless, {"kmsKeyId": "arn:aws:kms:k"}) == []


GLOBAL_GROUP = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"


def test_a_member_of_an_undeclared_global_datastore_fails():
    member = resource(GROUP, "member", {"globalReplicationGroupId": "ldgnf-elsewhere", "authToken": "t"})
    (message,) = stack_violations("elasticache-global-datastore-encrypted", [member])
    assert "does not declare" in message


def test_a_global_datastore_needs_its_encrypted_primary_in_the_stack():
    primary = resource(GROUP, "primary", {**SECURE_GROUP, "replicationGroupId": "acme-redis-use1"})
    datastore = resource(GLOBAL_GROUP, "global", {"primaryReplicationGroupId": "acme-redis-use1"})
    member = resource(GROUP, "member", {"globalReplicationGroupId": "ldgnf-acme", "authToken": "t"})
    assert stack_violations("elasticache-global-datastore-encrypted", [primary, datastore, member]) == []
    plain = resource(GROUP, "primary", {"replicationGroupId": "acme-redis-use1", "atRestEncryptionEnabled": True})
    (message,) = stack_violations("elasticache-global-datastore-encrypted", [plain, datastore, member])
    assert "must be encrypted at rest and in transit" in message
    (message,) = stack_violations("elasticache-global-datastore-encrypted", [datastore, member])
    assert "not declared in this stack" in message


def test_a_global_datastore_primary_is_found_through_property_dependencies_when_its_id_is_unknown():
    primary = resource(GROUP, "primary", SECURE_GROUP)
    datastore = PolicyResource(
        GLOBAL_GROUP,
        {},
        "urn:global",
        "global",
        OPTIONS,
        None,
        None,
        [primary],
        {"primaryReplicationGroupId": [primary]},
    )
    assert stack_violations("elasticache-global-datastore-encrypted", [primary, datastore]) == []


def prefix_bucket_set(*, encrypt: bool = True, block: bool = True) -> list[PolicyResource]:
    """A bucket named by bucketPrefix: its configurations reach it only through property dependencies."""
    bucket = resource("aws:s3/bucketV2:BucketV2", "uploads", {"bucketPrefix": "acme-uploads-"})

    def config(type_token: str, name: str, props: dict[str, Any]) -> PolicyResource:
        urn = f"urn:pulumi:prod::dr-platform::{type_token}::{name}"
        return PolicyResource(type_token, props, urn, name, OPTIONS, None, None, [bucket], {"bucket": [bucket]})

    found = [bucket]
    if encrypt:
        found.append(config(SSE, "uploads-sse", sse_rules("aws:kms")))
    if block:
        found.append(config(PAB, "uploads-pab", ALL_BLOCKED))
    return found


def test_a_bucket_prefix_named_bucket_is_checked_too():
    assert stack_violations("s3-buckets-protected", prefix_bucket_set()) == []
    (message,) = stack_violations("s3-buckets-protected", prefix_bucket_set(encrypt=False))
    assert message == "bucket acme-uploads- has no SSE-KMS encryption configuration"
    (message,) = stack_violations("s3-buckets-protected", prefix_bucket_set(block=False))
    assert message == "bucket acme-uploads- has no public access block"


def test_a_directory_bucket_needs_kms_but_no_public_access_block():
    bucket = resource("aws:s3/directoryBucket:DirectoryBucket", "express", {"bucket": "acme--use1-az4--x-s3"})
    sse = resource(SSE, "express-sse", {"bucket": "acme--use1-az4--x-s3", **sse_rules("aws:kms")})
    assert stack_violations("s3-buckets-protected", [bucket, sse]) == []
    assert stack_violations("s3-buckets-protected", [bucket]) == [
        "bucket acme--use1-az4--x-s3 has no SSE-KMS encryption configuration"
    ]


def test_the_account_public_access_block_sets_all_four_flags():
    account = "aws:s3/accountPublicAccessBlock:AccountPublicAccessBlock"
    assert violations("s3-public-access-blocked", account, ALL_BLOCKED) == []
    assert violations("s3-public-access-blocked", account, {**ALL_BLOCKED, "blockPublicPolicy": False}) != []


EKS = "aws:eks/cluster:Cluster"


@pytest.mark.parametrize(
    ("vpc_config", "passes"),
    [
        ({"endpointPrivateAccess": True, "endpointPublicAccess": False}, True),
        ({"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}, True),
        ({"endpointPublicAccess": True}, False),  # AWS's default allow-list is 0.0.0.0/0
        ({"endpointPublicAccess": True, "publicAccessCidrs": ["203.0.113.0/24", "0.0.0.0/0"]}, False),
        ({"endpointPublicAccess": True, "publicAccessCidrs": ["::/0"]}, False),
        ({"subnetIds": ["s"]}, False),  # unset means public: the API's default
    ],
)
def test_a_public_eks_endpoint_needs_an_allow_list(vpc_config, passes):
    """catalogue: eks.public-endpoint-default-open"""
    assert (violations("eks-endpoint-not-open", EKS, {"vpcConfig": vpc_config}) == []) is passes


INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"


@pytest.mark.parametrize(
    ("type_token", "props", "passes"),
    [
        (INGRESS, {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "0.0.0.0/0"}, True),
        (INGRESS, {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22, "cidrIpv4": "0.0.0.0/0"}, False),
        (INGRESS, {"ipProtocol": "-1", "cidrIpv6": "::/0"}, False),
        (INGRESS, {"ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432, "cidrIpv4": "10.10.0.0/16"}, True),
        (INGRESS, {"ipProtocol": "tcp", "fromPort": 0, "toPort": 65535, "cidrIpv4": "0.0.0.0/0"}, False),
        (
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            {"type": "ingress", "protocol": "tcp", "fromPort": 6379, "toPort": 6379, "ipv6CidrBlocks": ["::/0"]},
            False,
        ),
        (
            "aws:ec2/securityGroupRule:SecurityGroupRule",
            {"type": "egress", "protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]},
            True,
        ),
        (
            "aws:ec2/securityGroup:SecurityGroup",
            {"ingress": [{"protocol": "tcp", "fromPort": 3389, "toPort": 3389, "cidrBlocks": ["0.0.0.0/0"]}]},
            False,
        ),
        (
            "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
            {"ingress": [{"protocol": "-1", "fromPort": 0, "toPort": 0, "cidrBlocks": ["0.0.0.0/0"]}]},
            False,
        ),
    ],
)
def test_nothing_but_tcp_80_and_443_is_open_to_the_internet(type_token, props, passes):
    assert (violations("security-group-no-world-ingress", type_token, props) == []) is passes


def test_world_open_https_only_on_a_load_balancers_security_group():
    https = {"ipProtocol": "tcp", "fromPort": 443, "toPort": 443, "cidrIpv4": "0.0.0.0/0"}
    alb = resource("aws:lb/loadBalancer:LoadBalancer", "alb", {"securityGroups": ["sg-alb"]})
    on_alb = resource(INGRESS, "alb-https", {**https, "securityGroupId": "sg-alb"})
    on_app = resource(INGRESS, "app-https", {**https, "securityGroupId": "sg-app"})
    policy = "security-group-world-web-only-on-load-balancers"
    assert stack_violations(policy, [alb, on_alb]) == []
    (message,) = stack_violations(policy, [alb, on_alb, on_app])
    assert message.startswith("app-https opens TCP 80/443 to the internet")


VAULT = "aws:backup/vault:Vault"
LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"


@pytest.mark.parametrize(
    ("lock_props", "expected"),
    [
        ({"backupVaultName": "v", "changeableForDays": 3, "minRetentionDays": 7}, None),
        (None, "has no Vault Lock"),
        ({"backupVaultName": "other", "changeableForDays": 3, "minRetentionDays": 7}, "has no Vault Lock"),
        ({"backupVaultName": "v", "minRetentionDays": 7}, "governance mode"),
        ({"backupVaultName": "v", "changeableForDays": 3}, "no minRetentionDays"),
    ],
)
def test_backup_vaults_need_a_compliance_mode_lock(lock_props, expected):
    """catalogue: backup.vault-lock-compliance-mode"""
    found = [resource(VAULT, "vault", {"name": "v"})]
    if lock_props is not None:
        found.append(resource(LOCK, "lock", lock_props))
    messages = stack_violations("backup-vaults-locked", found)
    if expected is None:
        assert messages == []
    else:
        (message,) = messages
        assert expected in message


BOUNDARY = "arn:aws:iam::123456789012:policy/dr-platform-program-boundary"


@pytest.mark.parametrize(
    ("type_token", "props", "expected"),
    [
        ("aws:iam/role:Role", {"assumeRolePolicy": "{}", "permissionsBoundary": BOUNDARY}, []),
        ("aws:iam/role:Role", {"assumeRolePolicy": "{}"}, ["permissionsBoundary must be"]),
        (
            "aws:iam/role:Role",
            {"permissionsBoundary": "arn:aws:iam::aws:policy/AdministratorAccess"},
            ["permissionsBoundary must be"],
        ),
        ("aws:iam/user:User", {"name": "ci"}, ["no IAM users"]),
        ("aws:iam/rolePolicy:RolePolicy", {"policy": "{}"}, []),
    ],
)
def test_every_role_carries_the_program_boundary_and_no_user_is_declared(type_token, props, expected):
    """A role without the boundary would hold none of the CI roles' denies (bootstrap/iam.py).

    catalogue: iam.permissions-boundary-condition-key
    """
    found = violations("iam-roles-bounded", type_token, props)
    assert len(found) == len(expected) and all(e in m for e, m in zip(expected, found, strict=True))


def test_the_pack_names_the_boundary_the_program_and_bootstrap_use():
    from components.iam import PROGRAM_ROLE_BOUNDARY
    from policy.policies import ROLE_BOUNDARY_POLICY

    assert ROLE_BOUNDARY_POLICY == PROGRAM_ROLE_BOUNDARY
