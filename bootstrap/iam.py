"""IAM and KMS policy documents of the bootstrap stack, as plain dicts (tested offline).

Who can do what:

- preview: PR jobs of preview.yml. Reads the drctl control store (lock,
  DR-state authority); no state, no kms:Decrypt of any secrets key.
- deploy: deploy.yml on main in environment prod. Runs `pulumi up` of the prod
  stack, decrypts its secrets and holds its lock; touches nothing the bootstrap
  protects and never writes the DR-state authority or the journal.
- operator: the named (SSO) roles, for humans and drctl. What deploy can, plus
  encrypting secrets (stack init) and the runbooks' records.

Whatever managed policy they carry, the CI roles' `protections` deny what would
erase the platform's memory, and the ways around those denies: a role created
or re-granted without the program's boundary (which carries the same denies),
a user, another role assumed, a key deleted (docs/security-review.md).
- drill: drill.yml on main in environment drill. The drill stack's state,
  control-store prefix (its DR-state authority, which raises and lowers its
  traffic fence, journal, lock and reports), secrets key, tagged resources, and
  what a live drill calls by the drill stack's names, tagged keys and zone
  (`live_drill_statements`).
- replication: S3, for the state bucket only; copies versions to the primary region.

GitHub's OIDC token reaches AWS with only `aud` and `sub` usable as condition
keys (AWS supports no custom claims), so the repository's subject template
must carry the ref: `SUBJECT_CLAIM_KEYS` (set once with GitHub's API, see
docs/ci-setup.md). The subjects then read
`repo:OWNER/NAME:environment:prod:job_workflow_ref:OWNER/NAME/.github/workflows/deploy.yml@refs/heads/main`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from automation.dr_state import AUTHORITY_KEY
from automation.journal import CURRENT_RUN_KEY, stack_key_prefix
from components.fault_injection import ABORT_NAMESPACE
from components.iam import PROGRAM_ROLE_BOUNDARY
from components.naming import STACK_TAG

Document = dict[str, Any]

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
STS_AUDIENCE = "sts.amazonaws.com"
# catalogue: github.oidc-sub-template
SUBJECT_CLAIM_KEYS = ("repo", "context", "job_workflow_ref")

# Actions a key administrator needs; none of them uses the key. Not `kms:Create*`: it includes CreateGrant,
# with which an administrator grants itself Decrypt in one call.
KEY_ADMIN_ACTIONS = (
    "kms:CreateAlias",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:ReplicateKey",
)
# What would let CI erase or take over what the bootstrap protects.
PROTECTED_BUCKET_ACTIONS = (
    "s3:DeleteBucket",
    "s3:DeleteObjectVersion",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
    "s3:PutBucketVersioning",
    "s3:PutLifecycleConfiguration",
    "s3:PutReplicationConfiguration",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutObjectRetention",
    "s3:PutObjectLegalHold",
    "s3:BypassGovernanceRetention",
    "s3:PutEncryptionConfiguration",
    "s3:PutBucketPublicAccessBlock",
)
PROTECTED_KEY_ACTIONS = (
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
    "kms:PutKeyPolicy",
    "kms:CreateGrant",
    "kms:UpdatePrimaryRegion",
    "kms:DeleteAlias",
    "kms:UpdateAlias",
)
# Recovery points no deploy may erase (issue 13.12); the program may still manage plans and vault policies.
PROTECTED_BACKUP_ACTIONS = (
    "backup:DeleteRecoveryPoint",
    "backup:UpdateRecoveryPointLifecycle",
    "backup:DeleteBackupVault",
    "backup:DeleteBackupVaultLockConfiguration",
    "backup:DeleteBackupVaultAccessPolicy",
)
# Role changes that must name the program's permissions boundary: without it a deploy role could create (or
# re-grant) a role free of every deny here and act through it. catalogue: iam.permissions-boundary-condition-key
BOUNDED_ROLE_ACTIONS = ("iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:AttachRolePolicy", "iam:PutRolePolicy")
# The program declares no IAM users or groups; CI creating one (with access keys) would outlive its session.
USER_ACTIONS = (
    "iam:CreateUser",
    "iam:CreateAccessKey",
    "iam:CreateLoginProfile",
    "iam:UpdateLoginProfile",
    "iam:AttachUserPolicy",
    "iam:PutUserPolicy",
    "iam:PutUserPermissionsBoundary",
    "iam:AddUserToGroup",
    "iam:CreateGroup",
    "iam:AttachGroupPolicy",
    "iam:PutGroupPolicy",
)
# Tagging actions of the services the drill role reaches by tag: retagging a prod resource would hand it over.
# catalogue: iam.request-tag-allows-retagging
DRILL_TAGGING_ACTIONS = (
    "rds:AddTagsToResource",
    "rds:RemoveTagsFromResource",
    "elasticache:AddTagsToResource",
    "elasticache:RemoveTagsFromResource",
    "eks:TagResource",
    "eks:UntagResource",
    "backup:TagResource",
    "backup:UntagResource",
    "fis:TagResource",
    "fis:UntagResource",
    "ec2:CreateTags",
    "ec2:DeleteTags",
)


# STACK_TAG: the tag the program puts on every resource (its providers' default tags) naming its stack.
DRILL_SERVICES = ("rds:*", "elasticache:*", "eks:*", "ec2:*", "route53:*", "backup:*", "fis:*")


def boundary_arn(account_id: str) -> str:
    """The managed policy every role the program creates carries as its permissions boundary."""
    return f"arn:aws:iam::{account_id}:policy/{PROGRAM_ROLE_BOUNDARY}"


def github_subject(repository: str, context: str, workflow: str, ref: str) -> str:
    """The `sub` claim under `SUBJECT_CLAIM_KEYS` for a job of `workflow` at `ref` in `context`."""
    return f"repo:{repository}:{context}:job_workflow_ref:{repository}/.github/workflows/{workflow}@{ref}"


def deploy_subject(repository: str, environment: str) -> str:
    return github_subject(repository, f"environment:{environment}", "deploy.yml", "refs/heads/main")


def drill_subject(repository: str, environment: str) -> str:
    return github_subject(repository, f"environment:{environment}", "drill.yml", "refs/heads/main")


def preview_subject(repository: str) -> str:
    # The PR's merge ref; the preview role can read, not decrypt, so any PR of this repository may use it.
    return github_subject(repository, "pull_request", "preview.yml", "refs/pull/*/merge")


def github_trust(provider_arn: str, subject: str) -> Document:
    """Trust GitHub's OIDC tokens for exactly one subject (`*` only where the subject says so)."""
    operator = "StringLike" if "*" in subject else "StringEquals"
    conditions: dict[str, dict[str, str]] = {"StringEquals": {f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE}}
    conditions.setdefault(operator, {})[f"{GITHUB_OIDC_HOST}:sub"] = subject
    return _document(
        {
            "Sid": "GitHubActions",
            "Effect": "Allow",
            "Principal": {"Federated": provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": conditions,
        }
    )


def operator_trust(account_id: str, principal_patterns: Sequence[str]) -> Document:
    """Humans and drctl: the named (SSO) roles of this account, nobody else."""
    return _document(
        {
            "Sid": "NamedOperators",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity"],
            "Condition": {"ArnLike": {"aws:PrincipalArn": list(principal_patterns)}},
        }
    )


def replication_trust(account_id: str, source_bucket_arn: str) -> Document:
    """S3 replication for one bucket of this account (confused-deputy conditions).

    S3's replication guide shows no source keys on this trust: required, they could deny S3 and
    stop the state bucket's replication silently; `...IfExists` applies them whenever S3 sends them.
    catalogue: iam.source-keys-only-where-sent
    """
    return _document(
        {
            "Sid": "S3ReplicationOfTheStateBucket",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEqualsIfExists": {"aws:SourceAccount": account_id},
                "ArnLikeIfExists": {"aws:SourceArn": source_bucket_arn},
            },
        }
    )


def key_policy(
    account_id: str,
    admin_patterns: Sequence[str],
    decrypters: Sequence[str],
    encrypters: Sequence[str] = (),
    via_service: str | None = None,
    extra: Sequence[dict[str, Any]] = (),
) -> Document:
    """A key policy without the account-root delegation: only the listed roles ever use the key.

    Administrators manage the key but cannot use it; `decrypters` may decrypt,
    `encrypters` may also encrypt. `via_service` limits use to one AWS service
    (e.g. `s3.us-west-2.amazonaws.com` for a bucket key).
    """
    use_condition = {"Condition": {"StringEquals": {"kms:ViaService": via_service}}} if via_service else {}
    statements: list[dict[str, Any]] = [
        {
            "Sid": "Administer",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
            "Action": list(KEY_ADMIN_ACTIONS),
            "Resource": "*",
            "Condition": {"ArnLike": {"aws:PrincipalArn": list(admin_patterns)}},
        },
        {
            "Sid": "Decrypt",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(set(decrypters))},
            "Action": ["kms:Decrypt", "kms:DescribeKey"],
            "Resource": "*",
            **use_condition,
        },
    ]
    if encrypters:
        statements.append(
            {
                "Sid": "Encrypt",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(set(encrypters))},
                "Action": ["kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*"],
                "Resource": "*",
                **use_condition,
            }
        )
    return _document(*statements, *extra)


def reader_through_s3(account_id: str, role_names: Sequence[str], bucket_arn: str, region: str) -> dict[str, Any]:
    """Roles a stack creates (by name: they need not exist yet) decrypt objects of one bucket, through S3.

    The prod and drill stacks' fence publishers (components/fence_publisher.py) read their stack's DR state
    authority in the control store; each one's own policy allows GetObject of that one object only.
    With a Bucket Key the encryption context is the bucket's ARN (catalogue: kms.s3-bucket-key-encryption-context).
    """
    return {
        "Sid": "FencePublishersReadTheControlStore",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {
            "ArnLike": {"aws:PrincipalArn": [f"arn:aws:iam::{account_id}:role/{name}" for name in role_names]},
            "StringEquals": {
                "kms:ViaService": f"s3.{region}.amazonaws.com",
                "kms:EncryptionContext:aws:s3:arn": bucket_arn,
            },
        },
    }


def bucket_policy(bucket_arn: str, admin_patterns: Sequence[str]) -> Document:
    """TLS only; nobody but the administrators erases versions, lifts the lock or rewrites the bucket's rules."""
    return _document(
        {
            "Sid": "TlsOnly",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "OnlyAdministratorsChangeProtection",
            "Effect": "Deny",
            "Principal": "*",
            "Action": list(PROTECTED_BUCKET_ACTIONS),
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"ArnNotLike": {"aws:PrincipalArn": list(admin_patterns)}},
        },
    )


def preview_permissions(control_store_arn: str) -> Document:
    """Read the drctl control store (`deploy-gate --read-only`); nothing else."""
    return _document(
        {"Sid": "ListControlStore", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": control_store_arn},
        {"Sid": "ReadControlStore", "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{control_store_arn}/*"},
    )


def protections(
    protected_buckets: Sequence[str],
    protected_keys: Sequence[str],
    protected_iam: Sequence[str],
    boundary: str,
) -> list[dict[str, Any]]:
    """Explicit denies that hold whatever else a CI role, or a role the program creates, is allowed.

    They keep the state's history, the control store's lock, the keys and the recovery points, and they
    close the ways around themselves: a role created or re-granted without `boundary` (which carries
    these same denies), an IAM user, another role assumed, a managed policy of a CI role rewritten
    (`protected_iam`: the CI roles, the OIDC provider, the boundary and any customer-managed policy
    they carry), a key scheduled for deletion or locked against its own account.
    """
    bucket_resources = [arn for bucket in protected_buckets for arn in (bucket, f"{bucket}/*")]
    return [
        {
            "Sid": "KeepStateAndControlStore",
            "Effect": "Deny",
            "Action": list(PROTECTED_BUCKET_ACTIONS),
            "Resource": bucket_resources,
        },
        {"Sid": "KeepKeys", "Effect": "Deny", "Action": list(PROTECTED_KEY_ACTIONS), "Resource": list(protected_keys)},
        {
            "Sid": "NoSelfEscalation",
            "Effect": "Deny",
            "Action": ["iam:*"],
            "Resource": [*protected_iam, "arn:aws:iam::*:oidc-provider/" + GITHUB_OIDC_HOST],
        },
        {"Sid": "KeepRecoveryPoints", "Effect": "Deny", "Action": list(PROTECTED_BACKUP_ACTIONS), "Resource": "*"},
        # Every key encrypting data or backups is protected in the program: none is ever deleted by CI, and a
        # deleted key takes every recovery point it encrypts with it, Vault Lock or not.
        {"Sid": "NoKeyDeletion", "Effect": "Deny", "Action": "kms:ScheduleKeyDeletion", "Resource": "*"},
        # catalogue: kms.bypass-policy-lockout-safety-check
        {
            "Sid": "NoUnmanageableKeys",
            "Effect": "Deny",
            "Action": ["kms:PutKeyPolicy", "kms:CreateKey"],
            "Resource": "*",
            "Condition": {"Bool": {"kms:BypassPolicyLockoutSafetyCheck": "true"}},
        },
        # catalogue: iam.permissions-boundary-condition-key
        {
            "Sid": "OnlyBoundedRoles",
            "Effect": "Deny",
            "Action": list(BOUNDED_ROLE_ACTIONS),
            "Resource": "*",
            "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": boundary}},
        },
        {"Sid": "KeepBoundaries", "Effect": "Deny", "Action": "iam:DeleteRolePermissionsBoundary", "Resource": "*"},
        {"Sid": "NoUsers", "Effect": "Deny", "Action": list(USER_ACTIONS), "Resource": "*"},
        # The program assumes no role; an assumed role of the account would carry none of these denies.
        {"Sid": "NoRoleHopping", "Effect": "Deny", "Action": "sts:AssumeRole", "Resource": "*"},
    ]


def deploy_guardrails(
    protected_buckets: Sequence[str],
    protected_keys: Sequence[str],
    protected_iam: Sequence[str],
    boundary: str,
    read_only_objects: Sequence[str] = (),
) -> Document:
    """The CI roles' denies (`protections`), and objects of the control store the role may read, never write."""
    statements = protections(protected_buckets, protected_keys, protected_iam, boundary)
    if read_only_objects:
        statements.append(
            {
                "Sid": "NeverWriteTheDrStateOrJournal",
                "Effect": "Deny",
                "Action": ["s3:PutObject", "s3:DeleteObject"],
                "Resource": list(read_only_objects),
            }
        )
    return _document(*statements)


def program_role_boundary(
    protected_buckets: Sequence[str], protected_keys: Sequence[str], protected_iam: Sequence[str], boundary: str
) -> Document:
    """The permissions boundary of every role the program creates: anything its own policies allow, minus
    `protections`, so a role the deploy role creates or re-grants can do nothing the deploy role cannot.

    A managed policy: 6,144 characters at most (catalogue: iam.policy-size-quotas).
    """
    return _document(
        {"Sid": "WhatTheRolesOwnPoliciesAllow", "Effect": "Allow", "Action": "*", "Resource": "*"},
        *protections(protected_buckets, protected_keys, protected_iam, boundary),
    )


def control_store_records(control_store_arn: str, stack: str) -> list[str]:
    """The DR-state authority and the journal of `stack`: written by runbooks (operator) only, never by CI.

    `drctl deploy-gate` writes only the stack's lock; a deploy role that could write the authority
    could tell the next deploy the platform stands elsewhere.
    """
    prefix = f"{control_store_arn}/{stack_key_prefix(stack)}"
    journal = CURRENT_RUN_KEY.split("/")[0]
    return [f"{prefix}/{AUTHORITY_KEY}", f"{prefix}/{journal}/*", f"{prefix}/lock-breaks/*"]


def state_access(state_arn: str, control_store_arn: str) -> Document:
    """The prod stack's state and the control store (lock, journal, DR-state authority)."""
    return _document(
        {
            "Sid": "Buckets",
            "Effect": "Allow",
            "Action": ["s3:ListBucket", "s3:GetBucketLocation", "s3:GetBucketVersioning"],
            "Resource": [state_arn, control_store_arn],
        },
        {
            "Sid": "Objects",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": [f"{state_arn}/*", f"{control_store_arn}/*"],
        },
    )


@dataclass(frozen=True)
class DrillStack:
    """What the drill role may reach of the drill stack beyond its tag: names and the zone."""

    account_id: str
    name_prefix: str
    """The drill stack's namePrefix: every physical name it gives starts with `<name_prefix>-`."""
    hosted_zone_id: str | None = None


def drill_permissions(
    state_arn: str, control_store_arn: str, project: str, drill_stack: str, prod_stack: str, reach: DrillStack
) -> Document:
    """The drill stack's state and control-store prefix, resources tagged as the drill stack's, and what a live
    drill calls besides (`live_drill_statements`)."""
    state_prefixes = [
        f".pulumi/stacks/{project}/{drill_stack}.json*",
        f".pulumi/history/{project}/{drill_stack}/*",
        f".pulumi/backups/{project}/{drill_stack}/*",
        f".pulumi/locks/organization/{project}/{drill_stack}/*",
    ]
    prod_prefixes = [p.replace(f"/{drill_stack}", f"/{prod_stack}") for p in state_prefixes]
    return _document(
        # drctl reads records that may not exist yet (lock.json, dr-state.json) and takes S3's 404 for "none": without
        # ListBucket S3 answers 403 instead. catalogue: s3.missing-key-403-without-list-bucket
        {
            "Sid": "ListBuckets",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": [state_arn, control_store_arn],
        },
        {
            "Sid": "PulumiMeta",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": f"{state_arn}/.pulumi/meta.yaml",
        },
        {
            "Sid": "DrillStateOnly",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            "Resource": [
                *(f"{state_arn}/{prefix}" for prefix in state_prefixes),
                f"{control_store_arn}/{stack_key_prefix(f'organization/{project}/{drill_stack}')}/*",
            ],
        },
        {
            "Sid": "NeverProd",
            "Effect": "Deny",
            "Action": "s3:*",
            "Resource": [
                *(f"{state_arn}/{prefix}" for prefix in prod_prefixes),
                f"{control_store_arn}/{stack_key_prefix(f'organization/{project}/{prod_stack}')}/*",
            ],
        },
        # Existing resources by their tag, new ones by the tag they are created with
        # (the program's default tags must carry dr-platform:stack).
        *(
            {
                "Sid": f"DrillResourcesOnly{key.split(':')[1].split('/')[0]}",
                "Effect": "Allow",
                "Action": list(DRILL_SERVICES),
                "Resource": "*",
                "Condition": {"StringEquals": {f"{key}/{STACK_TAG}": drill_stack}},
            }
            for key in ("aws:ResourceTag", "aws:RequestTag")
        ),
        # Aborting a live drill (docs/fault-injection.md): the abort alarm at once, and the datapoint that keeps it
        # in ALARM. PutMetricData has no resource to scope; its namespace is the condition, and the only one, so the
        # traffic fence's namespace (shared with prod's fence) is not granted: the drill stack's fence steps write
        # its dr-state.json (DrillStateOnly) and its own fence publisher puts the datapoint.
        # catalogue: cloudwatch.put-metric-data-namespace-only
        {
            "Sid": "AbortDrills",
            "Effect": "Allow",
            "Action": "cloudwatch:SetAlarmState",
            "Resource": f"arn:aws:cloudwatch:*:{reach.account_id}:alarm:{reach.name_prefix}-*-drill-abort",
        },
        {
            "Sid": "RequestDrillAborts",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": ABORT_NAMESPACE}},
        },
        # The RequestTag allow above also matches a tagging call that puts the drill tag on a prod resource, which the
        # ResourceTag allow would then hand over: no tag of a resource another stack owns changes, and an EC2 tag
        # changes only at creation or on a drill resource. catalogue: iam.request-tag-allows-retagging
        {
            "Sid": "NeverRetagAnotherStacksResources",
            "Effect": "Deny",
            "Action": list(DRILL_TAGGING_ACTIONS),
            "Resource": "*",
            "Condition": {
                "StringNotEquals": {f"aws:ResourceTag/{STACK_TAG}": drill_stack},
                "Null": {f"aws:ResourceTag/{STACK_TAG}": "false"},
            },
        },
        {
            "Sid": "Ec2TagsOnlyAtCreationOrOnDrillResources",
            "Effect": "Deny",
            "Action": ["ec2:CreateTags", "ec2:DeleteTags"],
            "Resource": "*",
            "Condition": {
                "Null": {"ec2:CreateAction": "true"},
                "StringNotEquals": {f"aws:ResourceTag/{STACK_TAG}": drill_stack},
            },
        },
        # An experiment is created by StartExperiment: it must carry the drill stack's tag, whatever else allows it.
        # catalogue: fis.start-experiment-request-tag
        {
            "Sid": "ExperimentsCarryTheDrillStackTag",
            "Effect": "Deny",
            "Action": "fis:StartExperiment",
            "Resource": "*",
            "Condition": {"StringNotEquals": {f"aws:RequestTag/{STACK_TAG}": drill_stack}},
        },
        *live_drill_statements(drill_stack, reach),
    )


# Calls of a live drill that read only and that IAM cannot scope to the drill stack: the actions support no
# resource-level permissions, or drctl lists across the account (describe_db_snapshots without an identifier).
# Read-only wildcards keep the role under IAM's size quota. catalogue: iam.live-drill-reads-unscoped
LIVE_DRILL_READS = (
    "autoscaling:Describe*",
    "backup:List*",
    "cloudwatch:Describe*",
    "cloudwatch:GetMetric*",
    "elasticache:Describe*",
    "elasticloadbalancing:Describe*",
    "rds:Describe*",
    "route53:GetHealthCheck",
    "route53:GetHealthCheckStatus",
    "route53:GetChange",
    "s3:DescribeJob",
    "s3:ListJobs",
)
# What a live drill does to resources it names itself (snapshots, the scratch restore), which carry no stack tag
# when they are created: by the drill stack's name prefix.
LIVE_DRILL_NAMED_RDS = (
    "rds:CreateDBSnapshot",
    "rds:RestoreDBInstanceFromDBSnapshot",
    "rds:DeleteDBInstance",
    "rds:AddTagsToResource",
)
# components/storage.py names the S3 Batch Replication role `<namePrefix>-s3-batch-repl`.
BATCH_ROLE_SUFFIX = "s3-batch-repl"
BATCH_OPERATIONS_PRINCIPAL = "batchoperations.s3.amazonaws.com"
# The drill stack's roles a live drill passes, by name after `<namePrefix>-` (components/naming.py), to their service.
PASSED_ROLES = {
    BATCH_ROLE_SUFFIX: BATCH_OPERATIONS_PRINCIPAL,
    "s3-repl-*": "s3.amazonaws.com",
    "backup": "backup.amazonaws.com",
}


def live_drill_statements(drill_stack: str, reach: DrillStack) -> list[dict[str, Any]]:
    """What `drctl drill --live` calls besides the tagged services (tests/test_bootstrap.py derives the list from
    the code), each scoped to the drill stack: by its name prefix where the service scopes by ARN, by its tag
    where the service supports `aws:ResourceTag` (docs/drills.md, "The drill role", lists which)."""
    account, prefix = reach.account_id, reach.name_prefix
    tagged = {f"aws:ResourceTag/{STACK_TAG}": drill_stack}
    statements: list[dict[str, Any]] = [
        {"Sid": "LiveDrillReads", "Effect": "Allow", "Action": list(LIVE_DRILL_READS), "Resource": "*"},
        # Canaries and the replication check: the drill stack's buckets and their objects (`<prefix>-*` matches both).
        {
            "Sid": "DrillBuckets",
            "Effect": "Allow",
            "Action": [
                "s3:GetObject",
                "s3:PutObject",
                "s3:GetReplicationConfiguration",
                "s3:PutReplicationConfiguration",
            ],
            "Resource": f"arn:aws:s3:::{prefix}-*",
        },
        # The DR transitions' stack updates recreate alarms of the writer and its replica (tests/test_bootstrap.py
        # diffs the program's DR states for what they change).
        {
            "Sid": "DrillAlarms",
            "Effect": "Allow",
            "Action": [
                "cloudwatch:PutMetricAlarm",
                "cloudwatch:DeleteAlarms",
                "cloudwatch:TagResource",
                "cloudwatch:ListTagsForResource",
            ],
            "Resource": f"arn:aws:cloudwatch:*:{account}:alarm:{prefix}-*",
        },
        {
            "Sid": "DrillTopics",
            "Effect": "Allow",
            "Action": "sns:Publish",
            "Resource": f"arn:aws:sns:*:{account}:{prefix}-*",
        },
        # Secret ARNs end in `-` and six random characters. catalogue: secretsmanager.secret-arn-random-suffix
        {
            "Sid": "DrillSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": f"arn:aws:secretsmanager:*:{account}:secret:{prefix}-*",
        },
        {
            "Sid": "DrillRdsByName",
            "Effect": "Allow",
            "Action": list(LIVE_DRILL_NAMED_RDS),
            "Resource": [f"arn:aws:rds:*:{account}:{kind}:{prefix}-*" for kind in ("db", "snapshot")],
        },
        # By the id it is given, behind the prefix AWS adds (catalogue: elasticache.global-datastore-id-prefix).
        {
            "Sid": "DrillGlobalDatastore",
            "Effect": "Allow",
            "Action": "elasticache:FailoverGlobalReplicationGroup",
            "Resource": f"arn:aws:elasticache::{account}:globalreplicationgroup:*-{prefix}-redis",
        },
        # The drill stack's data keys (its key policies delegate to IAM); grants only for the AWS service that asks,
        # e.g. RDS creating the encrypted replica failback prepare rebuilds. catalogue: kms.resource-tag-and-grant-keys
        {
            "Sid": "DrillKeys",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey*", "kms:ReEncrypt*", "kms:DescribeKey"],
            "Resource": f"arn:aws:kms:*:{account}:key/*",
            "Condition": {"StringEquals": tagged},
        },
        {
            "Sid": "DrillKeyGrantsForAwsServices",
            "Effect": "Allow",
            "Action": "kms:CreateGrant",
            "Resource": f"arn:aws:kms:*:{account}:key/*",
            "Condition": {"StringEquals": tagged, "Bool": {"kms:GrantIsForAWSResource": "true"}},
        },
        # S3 Batch Replication (failback prepare): CreateJob supports no resource scope, so the scope is the role
        # it may pass, which reaches the drill stack's buckets only. catalogue: s3.batch-job-passes-its-role
        {"Sid": "BatchReplicationJobs", "Effect": "Allow", "Action": "s3:CreateJob", "Resource": "*"},
        # The drill stack's service roles, to their services only: the batch job's, and the ones the transitions'
        # replication rules and backup selections name again when they are recreated.
        {
            "Sid": "PassTheDrillStacksServiceRoles",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": [f"arn:aws:iam::{account}:role/{prefix}-{role}" for role in PASSED_ROLES],
            "Condition": {"StringEquals": {"iam:PassedToService": sorted(set(PASSED_ROLES.values()))}},
        },
    ]
    # Not granted: route53:UpdateHealthCheck (`pin_traffic_fence`: an operator's failover with
    # --fence-through-route53, or by hand; no drill step pins, and lowering only unpins a pin already made). A
    # health check's ARN is the id Route53 generates and Route53 has no tag conditions, so the only grant that reaches
    # the drill stack's fence checks before they exist is `healthcheck/*`: prod's too, and a disabled or inverted
    # fence check moves prod's traffic. catalogue: route53.health-check-arn-is-its-generated-id
    if reach.hosted_zone_id:
        # Route53 supports no aws:ResourceTag for record changes: the drill zone by its id.
        # catalogue: route53.no-resource-tag-conditions
        statements.append(
            {
                "Sid": "DrillZone",
                "Effect": "Allow",
                "Action": [
                    "route53:ChangeResourceRecordSets",
                    "route53:ListResourceRecordSets",
                    "route53:GetHostedZone",
                ],
                "Resource": f"arn:aws:route53:::hostedzone/{reach.hosted_zone_id}",
            }
        )
    return statements


def replication_permissions(
    source_arn: str, destination_arn: str, source_key_arn: str, destination_key_arn: str
) -> Document:
    """What S3 needs to copy the state bucket's versions, SSE-KMS on both sides (S3 replication guide)."""
    return _document(
        {
            "Sid": "ReadSource",
            "Effect": "Allow",
            "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
            "Resource": source_arn,
        },
        {
            "Sid": "ReadSourceVersions",
            "Effect": "Allow",
            "Action": [
                "s3:GetObjectVersionForReplication",
                "s3:GetObjectVersionAcl",
                "s3:GetObjectVersionTagging",
            ],
            "Resource": f"{source_arn}/*",
        },
        {
            "Sid": "WriteDestination",
            "Effect": "Allow",
            "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
            "Resource": f"{destination_arn}/*",
        },
        {"Sid": "DecryptSource", "Effect": "Allow", "Action": "kms:Decrypt", "Resource": source_key_arn},
        {"Sid": "EncryptDestination", "Effect": "Allow", "Action": "kms:Encrypt", "Resource": destination_key_arn},
    )


def _document(*statements: dict[str, Any]) -> Document:
    return {"Version": "2012-10-17", "Statement": list(statements)}
