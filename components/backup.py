"""AWS Backup: a vault and a plan per region, every rule copying to the other region.

Rules: daily snapshots, weekly backups that move to cold storage where the
resource type supports it, and continuous backups (point-in-time recovery).
A region's selection covers its data bucket and its current database
instance while that instance is standalone; AWS Backup cannot back up a read
replica (catalogue: backup.no-read-replica). Vaults and plans exist in both regions in every state, so a failover
only adds a selection in the DR region.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

import pulumi
import pulumi_aws as aws

from components.config import ROLES, PlatformConfig
from components.database import other_role
from components.encryption import RegionalKey
from components.naming import backup_plan_name, backup_role_name, backup_vault_name

MANAGED_POLICIES = {
    "backup": "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "restore": "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
    "s3-backup": "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Backup",
    "s3-restore": "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Restore",
}
START_WINDOW_MINUTES = 60
COMPLETION_WINDOW_MINUTES = 12 * 60


def continuous_retention_days(cfg: PlatformConfig) -> int:
    """Days of point-in-time recovery the continuous rule keeps.

    For RDS, AWS Backup's continuous backup is the instance's automated
    backup, and it sets the instance's retention to the rule's. Keeping the
    larger of the two settings means the rule never shortens the declared
    `dbBackupRetentionDays` (and the program never fights AWS Backup over it),
    while still meeting `backupContinuousRetentionDays`.
    """
    return max(cfg.backup_continuous_retention_days, cfg.db_backup_retention_days)


# catalogue: backup.cold-storage-minimum-90-days (weekly: retention >= cold + 90, from config)
def rule_lifecycles(cfg: PlatformConfig) -> dict[str, dict[str, int | bool]]:
    """Lifecycle per rule, shared by the rule and its cross-region copy."""
    return {
        "daily": {"delete_after": cfg.backup_daily_retention_days},
        "weekly": {
            "cold_storage_after": cfg.backup_weekly_cold_after_days,
            "delete_after": cfg.backup_weekly_retention_days,
            "opt_in_to_archive_for_supported_resources": True,
        },
        "continuous": {"delete_after": continuous_retention_days(cfg)},
    }


class BackupArgs(TypedDict):
    config: PlatformConfig
    providers: Mapping[str, aws.Provider]
    keys: Mapping[str, RegionalKey]
    protected: Mapping[str, list[pulumi.Input[str]]]
    """Per role, the ARNs the region's plan selects (may be empty)."""


class Backup(pulumi.ComponentResource):
    def __init__(self, name: str, args: BackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:data:Backup", name, None, opts)
        cfg = args["config"]
        providers = args["providers"]

        service_role = aws.iam.Role(
            f"{name}-service",
            name=backup_role_name(cfg),
            assume_role_policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "backup.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=providers["primary"]),
        )
        for purpose, policy_arn in MANAGED_POLICIES.items():
            aws.iam.RolePolicyAttachment(
                f"{name}-service-{purpose}",
                role=service_role.name,
                policy_arn=policy_arn,
                opts=pulumi.ResourceOptions(parent=self, provider=providers["primary"]),
            )

        self.vaults: dict[str, aws.backup.Vault] = {}
        for role in ROLES:
            self.vaults[role] = aws.backup.Vault(
                f"{name}-{role}",
                name=backup_vault_name(cfg, role),
                kms_key_arn=args["keys"][role].arn,
                force_destroy=False,
                # Deleting a vault deletes every recovery point in it.
                opts=pulumi.ResourceOptions(parent=self, provider=providers[role], protect=True, retain_on_delete=True),
            )

        lifecycles = rule_lifecycles(cfg)
        for role in ROLES:
            in_region = pulumi.ResourceOptions(parent=self, provider=providers[role])
            copy_to = self.vaults[other_role(role)].arn
            plan = aws.backup.Plan(
                f"{name}-{role}",
                name=backup_plan_name(cfg, role),
                rules=[
                    self._rule(role, "daily", cfg.backup_daily_schedule, lifecycles["daily"], copy_to),
                    self._rule(role, "weekly", cfg.backup_weekly_schedule, lifecycles["weekly"], copy_to),
                    # The schedule of a continuous rule sets how often its snapshot is copied.
                    self._rule(role, "continuous", cfg.backup_daily_schedule, lifecycles["continuous"], copy_to, True),
                ],
                opts=in_region,
            )
            resources = list(args["protected"].get(role, []))
            if resources:
                aws.backup.Selection(
                    f"{name}-{role}",
                    name=f"{backup_plan_name(cfg, role)}-data",
                    plan_id=plan.id,
                    iam_role_arn=service_role.arn,
                    resources=resources,
                    opts=in_region,
                )

        self.summary = {
            cfg.region_of(role): {"name": vault.name, "arn": vault.arn} for role, vault in self.vaults.items()
        }
        self.register_outputs({"summary": self.summary})

    def _rule(
        self,
        role: str,
        rule: str,
        schedule: str,
        lifecycle: Mapping[str, int | bool],
        copy_to: pulumi.Input[str],
        continuous: bool = False,
    ) -> aws.backup.PlanRuleArgs:
        return aws.backup.PlanRuleArgs(
            rule_name=rule,
            target_vault_name=self.vaults[role].name,
            schedule=schedule,
            start_window=START_WINDOW_MINUTES,
            completion_window=COMPLETION_WINDOW_MINUTES,
            enable_continuous_backup=continuous,
            lifecycle=aws.backup.PlanRuleLifecycleArgs(**lifecycle),
            copy_actions=[
                aws.backup.PlanRuleCopyActionArgs(
                    destination_vault_arn=copy_to, lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(**lifecycle)
                )
            ],
            recovery_point_tags={"dr-platform:backup-rule": rule},
        )
