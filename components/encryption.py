"""A customer-managed KMS key per region, used by every encrypted resource there."""

from __future__ import annotations

import json
from typing import TypedDict

import pulumi
import pulumi_aws as aws

# Services that publish to SNS topics encrypted with this key (alerts). SNS
# asks KMS for a data key as the publisher, so the key policy must admit it,
# and aws:SourceAccount limits it to this account's alarms.
# catalogue: sns.cloudwatch-publishes-to-encrypted-topic
_ALARM_PUBLISHER = "cloudwatch.amazonaws.com"
# EventBridge carries other services' events (AWS Backup, RDS...) to SNS. AWS
# documents that its KMS requests carry no aws:SourceAccount, so no condition.
_EVENT_PUBLISHER = "events.amazonaws.com"
_PUBLISH_ACTIONS = ["kms:Decrypt", "kms:GenerateDataKey*"]


class RegionalKeyArgs(TypedDict):
    alias: str
    description: str
    account_id: pulumi.Input[str]
    """The owning account, whose root keeps administering the key through IAM."""


def key_policy(account_id: str) -> str:
    """AWS's default key policy (account root: IAM decides) plus the SNS publishers."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
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
                    "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
                },
                {
                    "Sid": "EventBridgePublishesToEncryptedTopics",
                    "Effect": "Allow",
                    "Principal": {"Service": _EVENT_PUBLISHER},
                    "Action": _PUBLISH_ACTIONS,
                    "Resource": "*",
                },
            ],
        },
        sort_keys=True,
    )


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
            policy=pulumi.Output.from_input(args["account_id"]).apply(key_policy),
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
