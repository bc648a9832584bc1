import itertools
import json

import pytest

from automation.evaluate import ACCOUNT_ID, evaluate_program
from components.backup import BACKUP_POLICIES, RESTORE_POLICIES, VAULT_PROTECTED_ACTIONS, continuous_retention_days
from components.config import ConfigError, parse_config
from tests.conftest import evaluate_state, prod_config

PLAN = "aws:backup/plan:Plan"
SELECTION = "aws:backup/selection:Selection"
VAULT = "aws:backup/vault:Vault"
LOCK = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
VAULT_POLICY = "aws:backup/vaultPolicy:VaultPolicy"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
COPY_VAULT = "arn:aws:backup:us-east-1:210987654321:backup-vault:acme-dr-copies"
TRANSITIONS = ("steady", "failed-over", "resyncing", "steady-after-failback")


def _other(evaluation, region: str) -> str:
    cfg = evaluation.config
    return cfg.dr_region if region == cfg.primary_region else cfg.primary_region


def test_a_protected_vault_per_region_with_its_own_key(state_eval):
    vaults = state_eval.of_type(VAULT)
    assert sorted(v.region for v in vaults) == sorted(state_eval.regions())
    for vault in vaults:
        assert vault.inputs["kmsKeyArn"] == state_eval.outputs["kmsKeys"][vault.region]
        assert vault.protect and vault.retain_on_delete
        assert state_eval.outputs["backupVaults"][vault.region]["name"] == vault.inputs["name"]


def test_rules_keep_the_required_retention_and_copy_to_the_other_region(state_eval):
    cfg = state_eval.config
    for plan in state_eval.of_type(PLAN):
        rules = {rule["ruleName"]: rule for rule in plan.inputs["rules"]}
        assert set(rules) == {"daily", "weekly", "continuous"}
        assert rules["daily"]["schedule"] == cfg.backup_daily_schedule
        assert rules["daily"]["lifecycle"] == {"deleteAfter": 7}
        weekly = rules["weekly"]["lifecycle"]
        assert rules["weekly"]["schedule"] == cfg.backup_weekly_schedule
        # Weekly fulls kept four weeks; no cold storage, which AWS Backup ignores for RDS and S3
        # (catalogue: backup.cold-storage-not-for-rds-or-s3): nothing claims a tier the backups never reach.
        assert weekly == {"deleteAfter": 28}
        assert not [r for r in rules.values() if "coldStorageAfter" in r["lifecycle"]]
        assert rules["continuous"]["enableContinuousBackup"] is True
        assert rules["daily"].get("enableContinuousBackup") is False
        assert rules["continuous"]["lifecycle"]["deleteAfter"] >= 1
        other_vault = state_eval.outputs["backupVaults"][_other(state_eval, plan.region)]["arn"]
        own_vault = state_eval.outputs["backupVaults"][plan.region]["name"]
        for rule in rules.values():
            assert rule["targetVaultName"] == own_vault
            (copy,) = rule["copyActions"]
            assert copy["destinationVaultArn"] == other_vault
            assert copy["lifecycle"] == rule["lifecycle"]


def test_the_selection_waits_for_its_roles_policies(steady):
    """AWS Backup checks the role's permissions when the selection is created."""
    selection = steady.one("aws:backup/selection:Selection", "backup-primary")
    attachments = {
        r.urn for r in steady.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment") if "backup-service" in r.name
    }
    assert len(attachments) == 2 and attachments <= set(selection.dependencies)


def test_continuous_retention_never_shortens_the_database_retention():
    cfg = parse_config(prod_config())
    assert cfg.backup_continuous_retention_days == 1
    assert continuous_retention_days(cfg) == cfg.db_backup_retention_days == 7
    longer = parse_config(prod_config(backupContinuousRetentionDays="14"))
    assert continuous_retention_days(longer) == 14


@pytest.mark.parametrize(
    ("state", "covered"),
    [
        ("steady", {"us-east-1": "acme-drp-use1-pg-g1"}),
        # The failed region's selection stays as it was; the DR writer is added.
        ("failed-over", {"us-east-1": "acme-drp-use1-pg-g1", "us-west-2": "acme-drp-usw2-pg-g1"}),
        ("resyncing", {"us-west-2": "acme-drp-usw2-pg-g1"}),
        ("steady-after-failback", {"us-east-1": "acme-drp-use1-pg-g2"}),
    ],
)
def test_selections_cover_standalone_databases_and_their_bucket(state, covered):
    """Never a read replica (catalogue: backup.no-read-replica)."""
    evaluation = evaluate_state(state)
    selections = {s.region: s for s in evaluation.of_type(SELECTION)}
    assert set(selections) == set(covered)
    for region, identifier in covered.items():
        database = evaluation.outputs["database"][region]
        assert database["identifier"] == identifier and database["role"] != "replica"
        assert sorted(selections[region].inputs["resources"]) == sorted(
            [database["arn"], evaluation.outputs["buckets"][region]["arn"]]
        )


def _attached(evaluation, role) -> set[str]:
    return {
        a.inputs["policyArn"]
        for a in evaluation.of_type(ATTACHMENT)
        if a.inputs["role"] == role.inputs["name"] or role.urn in a.dependencies
    }


def test_the_backup_role_backs_up_and_the_restore_role_restores_and_neither_does_both(steady):
    """catalogue: iam.source-keys-only-where-sent"""
    roles = {r.name: r for r in steady.of_type(ROLE) if r.name in ("backup-service", "backup-restore")}
    for role in roles.values():
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert statement["Principal"] == {"Service": "backup.amazonaws.com"}
        # AWS Backup documents no source keys for its role: limited where it sends them, never broken.
        assert statement["Condition"] == {"StringEqualsIfExists": {"aws:SourceAccount": ACCOUNT_ID}}
    assert _attached(steady, roles["backup-service"]) == set(BACKUP_POLICIES.values())
    assert _attached(steady, roles["backup-restore"]) == set(RESTORE_POLICIES.values())
    for selection in steady.of_type(SELECTION):
        assert selection.inputs["iamRoleArn"].endswith(f":{roles['backup-service'].inputs['name']}")
    for selection in steady.of_type("aws:backup/restoreTestingSelection:RestoreTestingSelection"):
        assert selection.inputs["iamRoleArn"].endswith(f":{roles['backup-restore'].inputs['name']}")


def test_every_vault_has_a_compliance_lock_that_outlives_the_stack(state_eval):
    """catalogue: backup.vault-lock-compliance-mode"""
    cfg = state_eval.config
    locks = {lock.region: lock for lock in state_eval.of_type(LOCK)}
    assert set(locks) == set(state_eval.regions())
    for vault in state_eval.of_type(VAULT):
        lock = locks[vault.region]
        assert lock.inputs["backupVaultName"] == vault.inputs["name"]
        assert lock.inputs["changeableForDays"] == cfg.backup_vault_lock.changeable_for_days >= 3
        assert (lock.inputs["minRetentionDays"], lock.inputs["maxRetentionDays"]) == (7, 365)
        assert lock.protect and lock.retain_on_delete


def test_every_rule_and_copy_keeps_recovery_points_inside_the_locks_range(state_eval):
    """catalogue: backup.vault-lock-retention-range"""
    lock = state_eval.config.backup_vault_lock
    for plan in state_eval.of_type(PLAN):
        for rule in plan.inputs["rules"]:
            for lifecycle in [rule["lifecycle"], *(copy["lifecycle"] for copy in rule["copyActions"])]:
                assert lock.min_retention_days <= lifecycle["deleteAfter"] <= lock.max_retention_days


def test_vault_policies_deny_every_principal_every_way_to_remove_a_recovery_point(steady):
    policies = {p.region: p for p in steady.of_type(VAULT_POLICY)}
    assert set(policies) == set(steady.regions())
    for region, policy in policies.items():
        (statement,) = json.loads(policy.inputs["policy"])["Statement"]
        assert (statement["Effect"], statement["Principal"]) == ("Deny", {"AWS": "*"})
        assert set(statement["Action"]) == set(VAULT_PROTECTED_ACTIONS)
        assert "backup:DeleteRecoveryPoint" in statement["Action"]
        assert statement["Resource"] == steady.outputs["backupVaults"][region]["arn"]


def test_no_copy_leaves_the_account_unless_a_vault_is_named(steady):
    for plan in steady.of_type(PLAN):
        destinations = {c["destinationVaultArn"].split(":")[4] for r in plan.inputs["rules"] for c in r["copyActions"]}
        assert destinations == {ACCOUNT_ID}
    for key in steady.of_type("aws:kms/key:Key"):
        assert "BackupCopiesToAnotherAccount" not in key.inputs["policy"]


def test_daily_and_weekly_backups_of_the_vaults_region_are_copied_to_the_other_account():
    """catalogue: backup.cross-account-and-region-not-in-one-copy-for-rds
    catalogue: backup.cross-account-copy-needs-shared-key"""
    evaluation = evaluate_program(prod_config(backupCrossAccountVaultArn=COPY_VAULT))
    plans = {p.region: {r["ruleName"]: r for r in p.inputs["rules"]} for p in evaluation.of_type(PLAN)}
    for rule in ("daily", "weekly"):
        assert COPY_VAULT in {c["destinationVaultArn"] for c in plans["us-east-1"][rule]["copyActions"]}
    # Point-in-time recovery stays regional; the other region copies across regions only.
    assert COPY_VAULT not in {c["destinationVaultArn"] for c in plans["us-east-1"]["continuous"]["copyActions"]}
    assert all(COPY_VAULT not in json.dumps(rules) for rules in plans["us-west-2"].values())
    assert evaluation.outputs["backupVaults"]["us-east-1"]["copiesTo"][-1] == COPY_VAULT
    keys = {k.region: json.loads(k.inputs["policy"]) for k in evaluation.of_type("aws:kms/key:Key")}
    shared = {s["Sid"]: s for s in keys["us-east-1"]["Statement"]}
    assert shared["BackupCopiesToAnotherAccount"]["Principal"] == {"AWS": "arn:aws:iam::210987654321:root"}
    assert "BackupCopiesToAnotherAccount" not in json.dumps(keys["us-west-2"])


@pytest.mark.parametrize(
    ("arn", "problem"),
    [
        ("arn:aws:backup:eu-west-1:210987654321:backup-vault:copies", "it must be in us-east-1 or us-west-2"),
        ("arn:aws:s3:::copies", "must be a backup vault ARN"),
        ("arn:aws:backup:us-east-1:2109876543:backup-vault:copies", "must be a backup vault ARN"),
    ],
)
def test_a_cross_account_vault_must_be_a_vault_arn_in_one_of_the_two_regions(arn, problem):
    with pytest.raises(ConfigError, match="backupCrossAccountVaultArn") as error:
        parse_config(prod_config(backupCrossAccountVaultArn=arn))
    assert problem in str(error.value)


@pytest.mark.parametrize(("before", "after"), list(itertools.pairwise(TRANSITIONS)))
def test_vaults_and_plans_survive_every_transition(before, after):
    earlier, later = evaluate_state(before), evaluate_state(after)
    later_by_urn = later.by_urn()
    for resource in earlier.of_type(VAULT) + earlier.of_type(PLAN):
        kept = later_by_urn[resource.urn]
        assert kept.inputs["name"] == resource.inputs["name"]
        assert kept.protect == resource.protect
