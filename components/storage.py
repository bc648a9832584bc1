"""Application data in S3: a bucket per region and replication from the active one.

Each bucket is versioned, SSE-KMS encrypted with its region's key, private,
TLS-only, and expires data by prefix (`uploads/`, `logs/`; `config/` is kept).
Replication runs one way; its configuration object is named after the source
role, so a change of direction deletes one configuration and creates another
and never touches a bucket.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

import pulumi
import pulumi_aws as aws

from components.config import ROLES, DrState, PlatformConfig
from components.database import other_role
from components.encryption import RegionalKey
from components.iam import role_boundary, service_trust
from components.naming import data_bucket_name, replication_role_name
from components.providers import global_provider

# Glacier Instant Retrieval for uploads: still readable in milliseconds by the
# application until they expire, unlike GLACIER (Flexible Retrieval) which
# needs a restore. Old config versions are rarely read: the cheaper class.
UPLOADS_ARCHIVE_CLASS = "GLACIER_IR"
CONFIG_HISTORY_CLASS = "GLACIER"
# How long an overwritten or deleted upload or log stays recoverable.
NONCURRENT_GRACE_DAYS = 7
ABORT_MULTIPART_AFTER_DAYS = 7
REPLICATION_MINUTES = 15  # Replication Time Control: the only value S3 accepts


def replication_source_role(cfg: PlatformConfig) -> str:
    """The role whose bucket replicates to the other.

    Replication follows the active region, except after a failover: the
    primary-to-DR configuration lives in the failed region and stays as it was
    until failback prepare, when DR-to-primary replaces it.
    """
    return "primary" if cfg.dr_state is DrState.FAILED_OVER else cfg.active_role


class StorageArgs(TypedDict):
    config: PlatformConfig
    providers: Mapping[str, aws.Provider]
    keys: Mapping[str, RegionalKey]
    account_id: pulumi.Input[str]
    """The owning account: S3 may replicate with the roles for this account's buckets only."""


class Storage(pulumi.ComponentResource):
    def __init__(self, name: str, args: StorageArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:data:Storage", name, None, opts)
        cfg = args["config"]
        self.buckets: dict[str, aws.s3.Bucket] = {}
        versioning: dict[str, aws.s3.BucketVersioning] = {}
        for role in ROLES:
            in_region = pulumi.ResourceOptions(parent=self, provider=args["providers"][role])
            bucket = aws.s3.Bucket(
                f"{name}-{role}",
                bucket=data_bucket_name(cfg, role),
                force_destroy=False,
                opts=pulumi.ResourceOptions.merge(
                    in_region, pulumi.ResourceOptions(protect=True, retain_on_delete=True)
                ),
            )
            self.buckets[role] = bucket
            versioning[role] = aws.s3.BucketVersioning(
                f"{name}-{role}",
                bucket=bucket.bucket,
                versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
                opts=in_region,
            )
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-{role}",
                bucket=bucket.bucket,
                rules=[
                    aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                        apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                            sse_algorithm="aws:kms", kms_master_key_id=args["keys"][role].arn
                        ),
                        # One data key per bucket rather than per object: far fewer KMS calls.
                        bucket_key_enabled=True,
                    )
                ],
                opts=in_region,
            )
            public_access = aws.s3.BucketPublicAccessBlock(
                f"{name}-{role}",
                bucket=bucket.bucket,
                block_public_acls=True,
                block_public_policy=True,
                ignore_public_acls=True,
                restrict_public_buckets=True,
                opts=in_region,
            )
            aws.s3.BucketOwnershipControls(
                f"{name}-{role}",
                bucket=bucket.bucket,
                rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
                opts=in_region,
            )
            aws.s3.BucketPolicy(
                f"{name}-{role}",
                bucket=bucket.bucket,
                policy=tls_only_policy(bucket.arn),
                opts=pulumi.ResourceOptions.merge(in_region, pulumi.ResourceOptions(depends_on=[public_access])),
            )
            aws.s3.BucketLifecycleConfiguration(
                f"{name}-{role}",
                bucket=bucket.bucket,
                rules=lifecycle_rules(cfg),
                opts=pulumi.ResourceOptions.merge(in_region, pulumi.ResourceOptions(depends_on=[versioning[role]])),
            )

        # One IAM role per direction, both always declared (through the DR region's provider, like
        # every IAM resource): a failback then only has to create the replication configuration. A new rule
        # copies new objects only (catalogue: s3.replication-new-objects-only): failback
        # copies what the DR bucket gained meanwhile with S3 Batch Replication.
        iam_provider = global_provider(args["providers"])
        replication_roles = {source: self._replication_role(name, cfg, source, args, iam_provider) for source in ROLES}
        source = replication_source_role(cfg)
        destination = other_role(source)
        aws.s3.BucketReplicationConfig(
            f"{name}-replication-from-{source}",
            bucket=self.buckets[source].bucket,
            role=replication_roles[source].arn,
            rules=[
                aws.s3.BucketReplicationConfigRuleArgs(
                    id=f"all-to-{destination}",
                    status="Enabled",
                    priority=1,
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
                        bucket=self.buckets[destination].arn,
                        # Replicas are re-encrypted with the destination region's key.
                        encryption_configuration=aws.s3.BucketReplicationConfigRuleDestinationEncryptionConfigurationArgs(
                            replica_kms_key_id=args["keys"][destination].arn
                        ),
                        replication_time=aws.s3.BucketReplicationConfigRuleDestinationReplicationTimeArgs(
                            status="Enabled",
                            time=aws.s3.BucketReplicationConfigRuleDestinationReplicationTimeTimeArgs(
                                minutes=REPLICATION_MINUTES
                            ),
                        ),
                        metrics=aws.s3.BucketReplicationConfigRuleDestinationMetricsArgs(
                            status="Enabled",
                            event_threshold=aws.s3.BucketReplicationConfigRuleDestinationMetricsEventThresholdArgs(
                                minutes=REPLICATION_MINUTES
                            ),
                        ),
                    ),
                )
            ],
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args["providers"][source],
                # S3 refuses replication unless both buckets are versioned.
                depends_on=[versioning[source], versioning[destination]],
            ),
        )
        batch_role = self._batch_replication_role(name, cfg, iam_provider, args["account_id"])
        self.replication = {
            "source": cfg.region_of(source),
            "destination": cfg.region_of(destination),
            "batchRoleArn": batch_role.arn,
        }
        self.summary = {
            cfg.region_of(role): {"name": bucket.bucket, "arn": bucket.arn} for role, bucket in self.buckets.items()
        }
        self.register_outputs({"summary": self.summary, "replication": self.replication})

    def _replication_role(
        self,
        name: str,
        cfg: PlatformConfig,
        source: str,
        args: StorageArgs,
        provider: aws.Provider,
    ) -> aws.iam.Role:
        destination = other_role(source)
        keys = args["keys"]
        source_bucket, destination_bucket = self.buckets[source], self.buckets[destination]
        role = aws.iam.Role(
            f"{name}-replication-from-{source}",
            name=replication_role_name(cfg, source, destination),
            permissions_boundary=role_boundary(args["account_id"]),
            # S3's replication guide shows no source keys for this trust: applied where S3 sends them.
            # catalogue: iam.source-keys-only-where-sent
            assume_role_policy=service_trust(
                "s3.amazonaws.com", args["account_id"], source_arn=source_bucket.arn, documented=False
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        aws.iam.RolePolicy(
            f"{name}-replication-from-{source}",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                            "Resource": source_bucket.arn,
                        },
                        {
                            "Effect": "Allow",
                            "Action": [
                                "s3:GetObjectVersionForReplication",
                                "s3:GetObjectVersionAcl",
                                "s3:GetObjectVersionTagging",
                            ],
                            "Resource": pulumi.Output.concat(source_bucket.arn, "/*"),
                        },
                        {
                            "Effect": "Allow",
                            "Action": ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"],
                            "Resource": pulumi.Output.concat(destination_bucket.arn, "/*"),
                        },
                        {
                            "Effect": "Allow",
                            "Action": "kms:Decrypt",
                            "Resource": keys[source].arn,
                            "Condition": {
                                "StringEquals": {"kms:ViaService": f"s3.{cfg.region_of(source)}.amazonaws.com"}
                            },
                        },
                        {
                            "Effect": "Allow",
                            "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                            "Resource": keys[destination].arn,
                            "Condition": {
                                "StringEquals": {"kms:ViaService": f"s3.{cfg.region_of(destination)}.amazonaws.com"}
                            },
                        },
                    ],
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        return role

    def _batch_replication_role(
        self, name: str, cfg: PlatformConfig, provider: aws.Provider, account_id: pulumi.Input[str]
    ) -> aws.iam.Role:
        """The role S3 Batch Operations assumes to replicate objects live replication skipped.

        Failback starts a Batch Replication job with it for what the DR bucket took
        while failed over (catalogue: s3.live-replication-skips-existing-objects,
        s3.batch-replication-job). The manifest is generated from the bucket and no
        report is written, so it needs no manifest or report bucket.
        """
        role = aws.iam.Role(
            f"{name}-batch-replication",
            name=f"{cfg.name_prefix}-s3-batch-repl",
            permissions_boundary=role_boundary(account_id),
            assume_role_policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "batchoperations.s3.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        buckets = [bucket.arn for bucket in self.buckets.values()]
        aws.iam.RolePolicy(
            f"{name}-batch-replication",
            role=role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["s3:GetReplicationConfiguration", "s3:PutInventoryConfiguration"],
                            "Resource": buckets,
                        },
                        {
                            "Effect": "Allow",
                            "Action": "s3:InitiateReplication",
                            "Resource": [pulumi.Output.concat(arn, "/*") for arn in buckets],
                        },
                    ],
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=provider),
        )
        return role


def tls_only_policy(bucket_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """Deny every request that does not arrive over TLS."""
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "s3:*",
                    "Resource": [bucket_arn, pulumi.Output.concat(bucket_arn, "/*")],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
    )


def lifecycle_rules(cfg: PlatformConfig) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """Retention by prefix, from the config."""
    noncurrent_grace = aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
        noncurrent_days=NONCURRENT_GRACE_DAYS
    )
    # S3 refuses a rule whose expiration is not later than its transitions; an
    # upload that expires first never needs the transition anyway.
    upload_transitions = [
        aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(days=days, storage_class=storage_class)
        for days, storage_class in (
            (cfg.storage_ia_after_days, "STANDARD_IA"),
            (cfg.storage_glacier_after_days, UPLOADS_ARCHIVE_CLASS),
        )
        if days < cfg.uploads_retention_days
    ]
    return [
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="uploads",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix="uploads/"),
            transitions=upload_transitions,
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=cfg.uploads_retention_days),
            noncurrent_version_expiration=noncurrent_grace,
        ),
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="logs",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix="logs/"),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=cfg.logs_retention_days),
            noncurrent_version_expiration=noncurrent_grace,
        ),
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            # Kept indefinitely: only superseded versions move to a colder class.
            id="config-history",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix="config/"),
            noncurrent_version_transitions=[
                aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionTransitionArgs(
                    noncurrent_days=cfg.storage_glacier_after_days, storage_class=CONFIG_HISTORY_CLASS
                )
            ],
        ),
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="abort-incomplete-uploads",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=ABORT_MULTIPART_AFTER_DAYS
            ),
        ),
    ]
