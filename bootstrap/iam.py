"""IAM and KMS policy documents of the bootstrap stack, as plain dicts (tested offline).

Who can do what:

- preview: PR jobs of preview.yml. Reads the drctl control store (lock,
  DR-state authority); no state, no kms:Decrypt of any secrets key.
- deploy: deploy.yml on main in environment prod. Runs `pulumi up` of the prod
  stack and decrypts its secrets; touches nothing the bootstrap protects.
- operator: the named (SSO) roles, for humans and drctl. What deploy can, plus
  encrypting secrets (stack init).
- drill: drill.yml on main in environment drill. The drill stack's state,
  control-store prefix, secrets key and tagged resources only.
- replication: S3, for the state bucket only; copies versions to the primary region.

GitHub's OIDC token reaches AWS with only `aud` and `sub` usable as condition
keys (AWS supports no custom claims), so the repository's subject template
must carry the ref: `SUBJECT_CLAIM_KEYS` (set once with GitHub's API, see
docs/ci-setup.md). The subjects then read
`repo:OWNER/NAME:environment:prod:job_workflow_ref:OWNER/NAME/.github/workflows/deploy.yml@refs/heads/main`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from automation.journal import stack_key_prefix
from components.fault_injection import ABORT_NAMESPACE
from components.naming import STACK_TAG

Document = dict[str, Any]

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
STS_AUDIENCE = "sts.amazonaws.com"
# catalogue: github.oidc-sub-template
SUBJECT_CLAIM_KEYS = ("repo", "context", "job_workflow_ref")

# Actions a key administrator needs; none of them uses the key.
KEY_ADMIN_ACTIONS = (
    "kms:Create*",
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


# STACK_TAG: the tag the program puts on every resource (its providers' default tags) naming its stack.
DRILL_SERVICES = ("rds:*", "elasticache:*", "eks:*", "ec2:*", "route53:*", "backup:*", "fis:*")
# The fault-injection abort alarms (components/naming.py drill_abort_alarm_name: <prefix>-<region code>-drill-abort).
DRILL_ABORT_ALARMS = "arn:aws:cloudwatch:*:*:alarm:*-drill-abort"


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


def reader_through_s3(account_id: str, role_name: str, bucket_arn: str, region: str) -> dict[str, Any]:
    """A role the prod stack creates (by name: it need not exist yet) decrypts objects of one bucket, through S3.

    The fence publisher (components/fence_publisher.py) reads the DR state authority in the control store.
    With a Bucket Key the encryption context is the bucket's ARN (catalogue: kms.s3-bucket-key-encryption-context).
    """
    return {
        "Sid": "FencePublisherReadsTheControlStore",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
        "Action": "kms:Decrypt",
        "Resource": "*",
        "Condition": {
            "ArnLike": {"aws:PrincipalArn": [f"arn:aws:iam::{account_id}:role/{role_name}"]},
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


def deploy_guardrails(
    protected_buckets: Sequence[str], protected_keys: Sequence[str], protected_roles: Sequence[str]
) -> Document:
    """Explicit denies that hold whatever managed policy the deploy and operator roles carry.

    CI may deploy the platform; it may not erase the state's history, lift the
    control store's lock, take over or delete the keys, rewrite its own trust,
    or delete recovery points.
    """
    bucket_resources = [arn for bucket in protected_buckets for arn in (bucket, f"{bucket}/*")]
    return _document(
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
            "Resource": [*protected_roles, "arn:aws:iam::*:oidc-provider/" + GITHUB_OIDC_HOST],
        },
        {"Sid": "KeepRecoveryPoints", "Effect": "Deny", "Action": list(PROTECTED_BACKUP_ACTIONS), "Resource": "*"},
    )


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


def drill_permissions(
    state_arn: str, control_store_arn: str, project: str, drill_stack: str, prod_stack: str
) -> Document:
    """The drill stack's state and control-store prefix, and resources tagged as the drill stack's."""
    state_prefixes = [
        f".pulumi/stacks/{project}/{drill_stack}.json*",
        f".pulumi/history/{project}/{drill_stack}/*",
        f".pulumi/backups/{project}/{drill_stack}/*",
        f".pulumi/locks/organization/{project}/{drill_stack}/*",
    ]
    prod_prefixes = [p.replace(f"/{drill_stack}", f"/{prod_stack}") for p in state_prefixes]
    return _document(
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
        # in ALARM. PutMetricData has no resource to scope; its namespace is the condition.
        {"Sid": "AbortDrills", "Effect": "Allow", "Action": "cloudwatch:SetAlarmState", "Resource": DRILL_ABORT_ALARMS},
        {
            "Sid": "RequestDrillAborts",
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData",
            "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": ABORT_NAMESPACE}},
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
    )


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
