"""The bootstrap stack: everything dr-platform's first `pulumi up` needs, in the DR region.

- **Secrets keys** (prod and drill): multi-Region KMS keys whose primary is in
  the DR region, each with a replica in the primary region. The stack file's
  `secretsprovider` names the DR-region key; the replica shares its key
  material, so if the DR region is the one lost, changing `?region=` in that
  URL decrypts the same `encryptedkey` without re-encrypting anything. Only the
  deploy and operator roles (drill and operator for the drill key) decrypt.
- **State bucket** in the DR region: versioned, SSE-KMS, replicated to the
  primary region, its history kept by a bucket policy nobody but the key
  administrators can lift.
- **drctl control store** in the DR region: versioned with Object Lock default
  retention, so every version of the lock, the journals, the DR-state authority
  and lock-break records is kept; overwrites and deletes still work (they add a
  version or a delete marker). See docs/ci-setup.md for the retention choice.
- **GitHub OIDC provider and roles**: preview, deploy, operator, drill.
- **The program's permissions boundary** (`dr-platform-program-boundary`): every
  role the program creates must carry it (the CI roles may create no other), and
  it carries the CI roles' denies, so no created role escapes them.

Every resource is protected: losing one loses the platform's memory.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from bootstrap import iam
from bootstrap.config import BootstrapConfig
from components.fence_publisher import fence_publisher_name
from components.iam import PROGRAM_ROLE_BOUNDARY

KEEP = pulumi.ResourceOptions(protect=True, retain_on_delete=True)
# The roles that write state and the control store.
CI_WRITERS = ("deploy", "operator", "drill")


def build(cfg: BootstrapConfig) -> None:
    dr = _provider("dr", cfg, cfg.dr_region)
    primary = _provider("primary", cfg, cfg.primary_region)
    admins = cfg.key_admin_arns

    provider = aws.iam.OpenIdConnectProvider(
        "github",
        url=iam.GITHUB_OIDC_URL,
        client_id_lists=[iam.STS_AUDIENCE],
        opts=pulumi.ResourceOptions(provider=dr, protect=True),
    )
    state_arn = f"arn:aws:s3:::{cfg.state_bucket}"
    replica_arn = f"arn:aws:s3:::{cfg.state_replica_bucket}"
    control_arn = f"arn:aws:s3:::{cfg.control_store_bucket}"
    subjects = {
        "preview": iam.preview_subject(cfg.github_repository),
        "deploy": iam.deploy_subject(cfg.github_repository, cfg.deploy_environment),
        "drill": iam.drill_subject(cfg.github_repository, cfg.drill_environment),
    }
    trusts: dict[str, pulumi.Input[str]] = {
        name: provider.arn.apply(lambda oidc, subject=subject: json.dumps(iam.github_trust(oidc, subject)))
        for name, subject in subjects.items()
    }
    trusts["operator"] = json.dumps(iam.operator_trust(cfg.account_id, cfg.operator_principal_arns))
    trusts["replication"] = json.dumps(iam.replication_trust(cfg.account_id, state_arn))
    roles = {name: _role(name, dr, trust, SESSION_SECONDS.get(name, 3600)) for name, trust in trusts.items()}
    arns = {name: role.arn for name, role in roles.items()}

    def key_policy(
        decrypters: Sequence[str], encrypters: Sequence[str], region: str | None = None, extra: Sequence[Any] = ()
    ) -> Any:
        via = f"s3.{region}.amazonaws.com" if region else None
        return _rendered(
            arns,
            lambda a: iam.key_policy(
                cfg.account_id, admins, [a[n] for n in decrypters], [a[n] for n in encrypters], via, extra
            ),
        )

    # The prod and drill stacks' fence publishers read their DR state authority in the control store (the drill
    # stack's DR region is the bootstrap's: its control store is this one, Pulumi.drill.yaml controlStoreUrl).
    publishers = [fence_publisher_name(prefix, cfg.dr_region) for prefix in (cfg.name_prefix, cfg.drill_name_prefix)]
    publisher_reads = iam.reader_through_s3(cfg.account_id, publishers, control_arn, cfg.dr_region)

    secrets, _ = _multi_region_key("secrets", cfg, dr, primary, key_policy(["deploy", "operator"], ["operator"]))
    drill_secrets, _ = _multi_region_key(
        "drill-secrets", cfg, dr, primary, key_policy(["drill", "operator"], ["drill", "operator"])
    )
    # Buckets use the storage key through S3 only; in the primary region only replication writes.
    storage, storage_replica = _multi_region_key(
        "storage",
        cfg,
        dr,
        primary,
        key_policy(
            ["preview", "deploy", "operator", "drill", "replication"],
            ["deploy", "operator", "drill"],
            cfg.dr_region,
            [publisher_reads],
        ),
        replica_policy=key_policy(["deploy", "operator"], ["replication"], cfg.primary_region),
    )

    replica = _bucket("state-replica", cfg.state_replica_bucket, primary, storage_replica.arn, admins)
    state = _bucket("state", cfg.state_bucket, dr, storage.arn, admins)
    aws.s3.BucketLifecycleConfiguration(
        "state-history",
        bucket=state.id,
        rules=[
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expire-old-checkpoint-versions",
                status="Enabled",
                filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                    noncurrent_days=cfg.state_noncurrent_version_days
                ),
            )
        ],
        opts=pulumi.ResourceOptions(provider=dr, parent=state),
    )
    aws.iam.RolePolicy(
        "replication",
        role=roles["replication"].id,
        policy=_rendered(
            {"source": storage.arn, "destination": storage_replica.arn},
            lambda a: iam.replication_permissions(state_arn, replica_arn, a["source"], a["destination"]),
        ),
        opts=pulumi.ResourceOptions(provider=dr),
    )
    aws.s3.BucketReplicationConfig(
        "state-to-primary-region",
        bucket=state.id,
        role=roles["replication"].arn,
        rules=[
            aws.s3.BucketReplicationConfigRuleArgs(
                id="state-to-primary-region",
                status="Enabled",
                filter=aws.s3.BucketReplicationConfigRuleFilterArgs(prefix=""),
                delete_marker_replication=aws.s3.BucketReplicationConfigRuleDeleteMarkerReplicationArgs(
                    status="Enabled"
                ),
                source_selection_criteria=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaArgs(
                    sse_kms_encrypted_objects=aws.s3.BucketReplicationConfigRuleSourceSelectionCriteriaSseKmsEncryptedObjectsArgs(
                        status="Enabled"
                    )
                ),
                destination=aws.s3.BucketReplicationConfigRuleDestinationArgs(
                    bucket=replica.arn,
                    encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                        replica_kms_key_id=storage_replica.arn
                    ),
                ),
            )
        ],
        opts=pulumi.ResourceOptions(provider=dr, parent=state, depends_on=[replica]),
    )

    control = _bucket("control-store", cfg.control_store_bucket, dr, storage.arn, admins, object_lock=True)
    # catalogue: s3.object-lock-default-retention
    aws.s3.BucketObjectLockConfiguration(
        "control-store-retention",
        bucket=control.id,
        rule=aws.s3.BucketObjectLockConfigurationRuleArgs(
            default_retention=aws.s3.BucketObjectLockConfigurationRuleDefaultRetentionArgs(
                mode=cfg.control_store_lock_mode, days=cfg.control_store_retention_days
            )
        ),
        opts=KEEP.merge(pulumi.ResourceOptions(provider=dr, parent=control)),
    )

    keys = {"secrets": secrets.arn, "drill": drill_secrets.arn, "storage": storage.arn, "replica": storage_replica.arn}
    boundary = iam.boundary_arn(cfg.account_id)
    # The CI roles, the boundary itself and the customer-managed policies the CI roles carry: nothing CI may change.
    customer_policies = [arn for arn in cfg.deploy_policy_arns if not arn.startswith("arn:aws:iam::aws:")]
    protected = {**{f"key-{k}": v for k, v in keys.items()}, **{f"role-{k}": v for k, v in arns.items()}}

    def protections(document: Callable[..., iam.Document], **extra: Any) -> Any:
        return _rendered(
            protected,
            lambda a: document(
                [state_arn, replica_arn, control_arn],
                [v for k, v in a.items() if k.startswith("key-")],
                [*(v for k, v in a.items() if k.startswith("role-")), boundary, *customer_policies],
                boundary,
                **extra,
            ),
        )

    aws.iam.Policy(
        "program-role-boundary",
        name=PROGRAM_ROLE_BOUNDARY,
        description="The permissions boundary of every role dr-platform creates (bootstrap/iam.py)",
        policy=protections(iam.program_role_boundary),
        opts=pulumi.ResourceOptions(provider=dr, protect=True),
    )
    prod_stack = f"organization/{cfg.project_name}/{cfg.stack_name}"
    guardrails = {
        # CI holds the lock during a deploy; only runbooks (the operator) write the DR state and the journal.
        "deploy": protections(
            iam.deploy_guardrails, read_only_objects=iam.control_store_records(control_arn, prod_stack)
        ),
        "operator": protections(iam.deploy_guardrails),
    }
    state_access = json.dumps(iam.state_access(state_arn, control_arn))
    for name in ("deploy", "operator"):
        _policies(
            name, roles[name], dr, cfg.deploy_policy_arns, {"guardrails": guardrails[name], "state": state_access}
        )
    _policies("preview", roles["preview"], dr, (), {"control-store": json.dumps(iam.preview_permissions(control_arn))})
    reach = iam.DrillStack(cfg.account_id, cfg.drill_name_prefix, cfg.drill_hosted_zone_id)
    drill_access = iam.drill_permissions(
        state_arn, control_arn, cfg.project_name, cfg.drill_stack_name, cfg.stack_name, reach
    )
    _policies("drill", roles["drill"], dr, (), {"drill": json.dumps(drill_access), "guardrails": guardrails["deploy"]})

    secrets_url = f"awskms://alias/{cfg.name_prefix}-pulumi-secrets?region={cfg.dr_region}"
    pulumi.export("stateBackendUrl", f"s3://{cfg.state_bucket}?region={cfg.dr_region}")
    pulumi.export("stateBackendReplicaUrl", f"s3://{cfg.state_replica_bucket}?region={cfg.primary_region}")
    pulumi.export("controlStoreUrl", f"s3://{cfg.control_store_bucket}")
    pulumi.export("secretsProvider", secrets_url)
    pulumi.export("drillSecretsProvider", secrets_url.replace("-pulumi-secrets", "-pulumi-drill-secrets"))
    pulumi.export("roleArns", {name: arns[name] for name in ("preview", "deploy", "operator", "drill")})
    pulumi.export("githubSubjectClaimKeys", list(iam.SUBJECT_CLAIM_KEYS))
    pulumi.export("programRoleBoundaryArn", boundary)


def _provider(name: str, cfg: BootstrapConfig, region: str) -> aws.Provider:
    # allowed_account_ids: the bootstrap refuses to run with credentials of another account.
    return aws.Provider(name, region=region, allowed_account_ids=[cfg.account_id])


def _rendered(outputs: dict[str, pulumi.Output[str]], document: Callable[[dict[str, str]], iam.Document]) -> Any:
    """A policy document built from resource ARNs, serialised once they are known."""
    return pulumi.Output.all(**outputs).apply(lambda values: json.dumps(document(values)))


# A full live drill runs for hours (failback prepare rebuilds a cross-region replica): its credentials must last.
# catalogue: iam.role-max-session-duration
SESSION_SECONDS = {"drill": 12 * 3600}


def _role(name: str, provider: aws.Provider, trust: pulumi.Input[str], session_seconds: int) -> aws.iam.Role:
    return aws.iam.Role(
        name,
        name=f"dr-platform-{name}",  # bootstrap.config.CI_ROLE_NAMES
        assume_role_policy=trust,
        max_session_duration=session_seconds,
        opts=pulumi.ResourceOptions(provider=provider, protect=True),
    )


def _policies(
    name: str,
    role: aws.iam.Role,
    provider: aws.Provider,
    managed: Sequence[str],
    inline: dict[str, pulumi.Input[str]],
) -> None:
    for index, policy_arn in enumerate(managed):
        aws.iam.RolePolicyAttachment(
            f"{name}-managed-{index}",
            role=role.name,
            policy_arn=policy_arn,
            opts=pulumi.ResourceOptions(provider=provider, parent=role),
        )
    for policy_name, document in inline.items():
        aws.iam.RolePolicy(
            f"{name}-{policy_name}",
            role=role.id,
            policy=document,
            opts=pulumi.ResourceOptions(provider=provider, parent=role),
        )


def _multi_region_key(
    name: str,
    cfg: BootstrapConfig,
    dr: aws.Provider,
    primary: aws.Provider,
    policy: pulumi.Input[str],
    replica_policy: pulumi.Input[str] | None = None,
) -> tuple[aws.kms.Key, aws.kms.ReplicaKey]:
    """A multi-Region key, primary in the DR region, replica (same material, same alias) in the primary region."""
    # catalogue: kms.multi-region-key-decrypts-in-replica-region
    key = aws.kms.Key(
        name,
        description=f"{cfg.name_prefix} {name} (multi-Region; primary in {cfg.dr_region})",
        multi_region=True,
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=policy,
        opts=KEEP.merge(pulumi.ResourceOptions(provider=dr)),
    )
    replica = aws.kms.ReplicaKey(
        f"{name}-primary-region",
        primary_key_arn=key.arn,
        description=f"{cfg.name_prefix} {name} (replica in {cfg.primary_region})",
        policy=replica_policy or policy,
        deletion_window_in_days=30,
        opts=KEEP.merge(pulumi.ResourceOptions(provider=primary)),
    )
    alias = f"alias/{cfg.name_prefix}-pulumi-{name}"
    aws.kms.Alias(f"{name}-alias", name=alias, target_key_id=key.key_id, opts=pulumi.ResourceOptions(provider=dr))
    aws.kms.Alias(
        f"{name}-primary-region-alias",
        name=alias,
        target_key_id=replica.key_id,
        opts=pulumi.ResourceOptions(provider=primary),
    )
    return key, replica


def _bucket(
    name: str,
    bucket_name: str,
    provider: aws.Provider,
    key_arn: pulumi.Input[str],
    admins: Sequence[str],
    object_lock: bool = False,
) -> aws.s3.Bucket:
    bucket = aws.s3.Bucket(
        name,
        bucket=bucket_name,
        object_lock_enabled=object_lock or None,
        opts=KEEP.merge(pulumi.ResourceOptions(provider=provider)),
    )
    child = pulumi.ResourceOptions(provider=provider, parent=bucket)
    aws.s3.BucketVersioning(
        f"{name}-versioning",
        bucket=bucket.id,
        versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        opts=child,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[
            aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=key_arn
                ),
                bucket_key_enabled=True,
            )
        ],
        opts=child,
    )
    aws.s3.BucketPublicAccessBlock(
        f"{name}-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=child,
    )
    aws.s3.BucketPolicy(
        f"{name}-policy",
        bucket=bucket.id,
        policy=json.dumps(iam.bucket_policy(f"arn:aws:s3:::{bucket_name}", admins)),
        opts=child,
    )
    return bucket
