"""AWS Backup: a locked vault and a plan per region, every rule copying to the other region.

Rules: daily snapshots, weekly fulls kept `backupWeeklyRetentionDays` (four
weeks by default), and continuous backups (point-in-time recovery). No rule
moves anything to cold storage: AWS Backup has no cold tier for RDS or S3 and
ignores the setting for them (catalogue: backup.cold-storage-not-for-rds-or-s3;
docs/data-tier.md says what that leaves of the 3-2-1 rule).
A region's selection covers its data bucket and its current database
instance while that instance is standalone; a read replica is left out
(catalogue: backup.no-read-replica). Vaults and plans exist in both regions in every state, so a failover
only adds a selection in the DR region.

No single admin (or a stolen deploy role) can erase the backups:

- each vault carries a compliance-mode Vault Lock (`backupVaultLock*` keys):
  once its grace time is over, no one, AWS included, can remove it or delete
  a recovery point before its retention ends; config validation keeps every
  rule's retention inside the lock's range, since AWS fails the jobs that fall
  outside it (catalogue: backup.vault-lock-retention-range);
- each vault's access policy denies deleting recovery points, shortening
  their lifecycle and deleting the vault to every principal;
- optionally (`backupCrossAccountVaultArn`), daily and weekly recovery points
  are also copied to a vault in another account, whose owner decides who may
  delete there (docs/data-tier.md: the destination account's setup).

Two service roles: one that backs up (the plans' selections) and one that
restores (restore testing, `components/restore_testing.py`); neither carries
the other's permissions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

import pulumi
import pulumi_aws as aws

from components.config import ROLES, PlatformConfig, continuous_backup_days
from components.database import other_role
from components.encryption import RegionalKey
from components.iam import role_boundary, service_trust
from components.naming import backup_plan_name, backup_role_name, backup_vault_name, restore_role_name
from components.providers import global_provider

BACKUP_POLICIES = {
    "backup": "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
    "s3-backup": "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Backup",
}
RESTORE_POLICIES = {
    "restore": "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
    "s3-restore": "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Restore",
}
START_WINDOW_MINUTES = 60
COMPLETION_WINDOW_MINUTES = 12 * 60
VAULT_PROTECTED_ACTIONS = [
    "backup:DeleteRecoveryPoint",
    "backup:UpdateRecoveryPointLifecycle",
    "backup:DisassociateRecoveryPoint",
    "backup:DeleteBackupVault",
]
"""What the vault access policies deny to everyone: every way to remove a recovery point early."""
CROSS_ACCOUNT_RULES = ("daily", "weekly")
"""Rules whose recovery points also go to the other account's vault (point-in-time recovery stays regional)."""


def continuous_retention_days(cfg: PlatformConfig) -> int:
    """Days of point-in-time recovery the continuous rule keeps (see `continuous_backup_days`)."""
    return continuous_backup_days(cfg.backup_continuous_retention_days, cfg.db_backup_retention_days)


def rule_lifecycles(cfg: PlatformConfig) -> dict[str, dict[str, int | bool]]:
    """Lifecycle per rule, shared by the rule and its cross-region copy.

    No cold storage: the plans protect RDS and S3 only, for which AWS Backup ignores it
    (catalogue: backup.cold-storage-not-for-rds-or-s3); a resource type that has it would also
    keep each point there 90 days at least (catalogue: backup.cold-storage-minimum-90-days).
    """
    return {
        "daily": {"delete_after": cfg.backup_daily_retention_days},
        "weekly": {"delete_after": cfg.backup_weekly_retention_days},
        "continuous": {"delete_after": continuous_retention_days(cfg)},
    }


def cross_account_copy_role(cfg: PlatformConfig) -> str | None:
    """The role whose plan copies to the other account's vault: the one in that vault's region.

    catalogue: backup.cross-account-and-region-not-in-one-copy-for-rds
    """
    arn = cfg.backup_cross_account_vault_arn
    return cfg.role_of(arn.split(":")[3]) if arn else None


def deny_deletes_policy(vault_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """Nobody deletes a recovery point, shortens its lifecycle or deletes the vault (the lifecycle still expires)."""
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "NoOneDeletesRecoveryPoints",
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": VAULT_PROTECTED_ACTIONS,
                    "Resource": vault_arn,
                }
            ],
        }
    )


class BackupArgs(TypedDict):
    config: PlatformConfig
    providers: Mapping[str, aws.Provider]
    keys: Mapping[str, RegionalKey]
    protected: Mapping[str, list[pulumi.Input[str]]]
    """Per role, the ARNs the region's plan selects (may be empty)."""
    account_id: pulumi.Input[str]


class Backup(pulumi.ComponentResource):
    def __init__(self, name: str, args: BackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:data:Backup", name, None, opts)
        cfg = args["config"]
        providers = args["providers"]
        # IAM is global: declared through the DR region's provider, which a failover counts on.
        in_global = pulumi.ResourceOptions(parent=self, provider=global_provider(providers))

        # AWS Backup documents no source keys for its service role: applied where it sends them.
        # catalogue: iam.source-keys-only-where-sent
        trust = service_trust("backup.amazonaws.com", args["account_id"], documented=False)
        boundary = role_boundary(args["account_id"])
        service_role = aws.iam.Role(
            f"{name}-service",
            name=backup_role_name(cfg),
            assume_role_policy=trust,
            permissions_boundary=boundary,
            opts=in_global,
        )
        self.restore_role = aws.iam.Role(
            f"{name}-restore",
            name=restore_role_name(cfg),
            assume_role_policy=trust,
            permissions_boundary=boundary,
            opts=in_global,
        )
        attachments: dict[str, list[aws.iam.RolePolicyAttachment]] = {}
        for prefix, role, policies in (
            ("service", service_role, BACKUP_POLICIES),
            ("restore", self.restore_role, RESTORE_POLICIES),
        ):
            attachments[prefix] = [
                aws.iam.RolePolicyAttachment(
                    f"{name}-{prefix}-{purpose}", role=role.name, policy_arn=policy_arn, opts=in_global
                )
                for purpose, policy_arn in policies.items()
            ]

        lock = cfg.backup_vault_lock
        self.vaults: dict[str, aws.backup.Vault] = {}
        for role in ROLES:
            # Deleting a vault deletes every recovery point in it; a lock past its grace time cannot be removed.
            kept = pulumi.ResourceOptions(parent=self, provider=providers[role], protect=True, retain_on_delete=True)
            vault = aws.backup.Vault(
                f"{name}-{role}",
                name=backup_vault_name(cfg, role),
                kms_key_arn=args["keys"][role].arn,
                force_destroy=False,
                opts=kept,
            )
            # catalogue: backup.vault-lock-compliance-mode
            # catalogue: backup.vault-lock-retention-range (config keeps every rule inside the range)
            aws.backup.VaultLockConfiguration(
                f"{name}-{role}",
                backup_vault_name=vault.name,
                changeable_for_days=lock.changeable_for_days,
                min_retention_days=lock.min_retention_days,
                max_retention_days=lock.max_retention_days,
                opts=kept,
            )
            aws.backup.VaultPolicy(
                f"{name}-{role}",
                backup_vault_name=vault.name,
                policy=deny_deletes_policy(vault.arn),
                opts=pulumi.ResourceOptions(parent=self, provider=providers[role]),
            )
            self.vaults[role] = vault

        lifecycles = rule_lifecycles(cfg)
        copies_out_of_account = cross_account_copy_role(cfg)
        for role in ROLES:
            in_region = pulumi.ResourceOptions(parent=self, provider=providers[role])
            copy_to: list[pulumi.Input[str]] = [self.vaults[other_role(role)].arn]
            copy_out = [cfg.backup_cross_account_vault_arn] if role == copies_out_of_account else []
            plan = aws.backup.Plan(
                f"{name}-{role}",
                name=backup_plan_name(cfg, role),
                rules=[
                    self._rule(role, "daily", cfg.backup_daily_schedule, lifecycles["daily"], [*copy_to, *copy_out]),
                    self._rule(role, "weekly", cfg.backup_weekly_schedule, lifecycles["weekly"], [*copy_to, *copy_out]),
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
                    # AWS Backup checks the role's permissions (tag:GetResources...) when the selection is
                    # created: with the policies not yet attached, creation retries until they are.
                    opts=pulumi.ResourceOptions.merge(
                        in_region, pulumi.ResourceOptions(depends_on=attachments["service"])
                    ),
                )

        self.summary = {
            cfg.region_of(role): {
                "name": vault.name,
                "arn": vault.arn,
                "lock": {
                    "mode": "compliance",
                    "changeableForDays": lock.changeable_for_days,
                    "minRetentionDays": lock.min_retention_days,
                    "maxRetentionDays": lock.max_retention_days,
                },
                "copiesTo": [
                    self.vaults[other_role(role)].arn,
                    *([cfg.backup_cross_account_vault_arn] if role == copies_out_of_account else []),
                ],
            }
            for role, vault in self.vaults.items()
        }
        self.register_outputs({"summary": self.summary})

    def _rule(
        self,
        role: str,
        rule: str,
        schedule: str,
        lifecycle: Mapping[str, int | bool],
        copy_to: list[pulumi.Input[str]],
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
                    destination_vault_arn=destination,
                    lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(**lifecycle),
                )
                for destination in copy_to
            ],
            recovery_point_tags={"dr-platform:backup-rule": rule},
        )
