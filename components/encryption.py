"""A customer-managed KMS key per region, used by every encrypted resource there."""

from __future__ import annotations

import json
from typing import Required, TypedDict

import pulumi
import pulumi_aws as aws

# The one service that publishes to SNS topics encrypted with this key: CloudWatch
# alarms. SNS asks KMS for a data key as the publisher, so the key policy must admit
# it, in the form SNS documents: no condition. Whether CloudWatch's requests carry
# aws:SourceAccount is not documented, and a condition on a key that never arrives would
# drop every alarm notification silently; the topics' own policies admit this account
# only. Nothing routes EventBridge events to these topics (the restore-test validator
# publishes metrics), so EventBridge gets no grant.
# catalogue: sns.cloudwatch-publishes-to-encrypted-topic
# catalogue: sns.cloudwatch-kms-request-source-keys
_ALARM_PUBLISHER = "cloudwatch.amazonaws.com"
_PUBLISH_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey*"]
# What another account's AWS Backup needs to copy a recovery point encrypted with this key.
_COPY_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:ReEncrypt*"]


class RegionalKeyArgs(TypedDict, total=False):
    alias: Required[str]
    description: Required[str]
    account_id: Required[pulumi.Input[str]]
    """The owning account, whose root keeps administering the key through IAM."""
    backup_copy_account: str
    """Another account whose vault receives copies of recovery points encrypted with this key."""


def key_policy(account_id: str, backup_copy_account: str | None = None) -> str:
    """AWS's default key policy (account root: IAM decides), the alarm publisher, and a backup copy account."""
    statements: list[dict[str, object]] = [
        {
            "Sid": "AccountAdministersThroughIam",
            "Effect": "Allow",
            "Principal": {"AWS": account_id},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "CloudWatchAlarmsPublishToEncryptedTopics",
            "Effect": "Allow",
            "Principal": {"Service": _ALARM_PUBLISHER},
            "Action": _PUBLISH_ACTIONS,
            "Resource": "*",
        },
    ]
    if backup_copy_account:
        # catalogue: backup.cross-account-copy-needs-shared-key
        copier = f"arn:aws:iam::{backup_copy_account}:root"
        statements += [
            {
                "Sid": "BackupCopiesToAnotherAccount",
                "Effect": "Allow",
                "Principal": {"AWS": copier},
                "Action": _COPY_ACTIONS,
                "Resource": "*",
            },
            {
                "Sid": "BackupCopiesToAnotherAccountGrants",
                "Effect": "Allow",
                "Principal": {"AWS": copier},
                "Action": "kms:CreateGrant",
                "Resource": "*",
                "Condition": {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            },
        ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


class RegionalKey(pulumi.ComponentResource):
    """A key per region (catalogue: kms.key-is-regional) rather than a multi-region key: a multi-region key's
    primary lives in one region, and its policy and rotation are managed there,
    which is exactly the region a failover has to do without."""

    def __init__(self, name: str, args: RegionalKeyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:security:RegionalKey", name, None, opts)
        self.key = aws.kms.Key(
            f"{name}-key",
            description=args["description"],
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=pulumi.Output.from_input(args["account_id"]).apply(
                lambda account: key_policy(account, args.get("backup_copy_account"))
            ),
            # Destroying the key destroys every backup and snapshot it encrypts.
            opts=pulumi.ResourceOptions(parent=self, protect=True, retain_on_delete=True),
        )
        aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{args['alias']}",
            target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.key.arn
        self.register_outputs({"arn": self.arn})
