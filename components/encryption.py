"""A customer-managed KMS key per region, used by every encrypted resource there."""

from __future__ import annotations

from typing import TypedDict

import pulumi
import pulumi_aws as aws


class RegionalKeyArgs(TypedDict):
    alias: str
    description: str


class RegionalKey(pulumi.ComponentResource):
    """A key per region rather than a multi-region key: a multi-region key's
    primary lives in one region, and its policy and rotation are managed there,
    which is exactly the region a failover has to do without."""

    def __init__(self, name: str, args: RegionalKeyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:security:RegionalKey", name, None, opts)
        self.key = aws.kms.Key(
            f"{name}-key",
            description=args["description"],
            enable_key_rotation=True,
            deletion_window_in_days=30,
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
