import itertools
import json

import pytest

from components.backup import MANAGED_POLICIES, continuous_retention_days
from components.config import parse_config
from tests.conftest import evaluate_state, prod_config

PLAN = "aws:backup/plan:Plan"
SELECTION = "aws:backup/selection:Selection"
VAULT = "aws:backup/vault:Vault"
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
        assert weekly["coldStorageAfter"] == cfg.backup_weekly_cold_after_days
        # AWS Backup keeps a recovery point 90 days in cold storage at least.
        assert weekly["deleteAfter"] - weekly["coldStorageAfter"] >= 90
        assert weekly["deleteAfter"] >= 28
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


def test_service_role_has_the_backup_and_restore_policies(steady):
    (role,) = [r for r in steady.of_type("aws:iam/role:Role") if r.name == "backup-service"]
    assert json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]["Principal"] == {
        "Service": "backup.amazonaws.com"
    }
    attached = {a.inputs["policyArn"] for a in steady.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}
    assert set(MANAGED_POLICIES.values()) <= attached
    assert any("S3Backup" in arn for arn in MANAGED_POLICIES.values())
    for selection in steady.of_type(SELECTION):
        assert selection.inputs["iamRoleArn"].endswith(f":{role.inputs['name']}")


@pytest.mark.parametrize(("before", "after"), list(itertools.pairwise(TRANSITIONS)))
def test_vaults_and_plans_survive_every_transition(before, after):
    earlier, later = evaluate_state(before), evaluate_state(after)
    later_by_urn = later.by_urn()
    for resource in earlier.of_type(VAULT) + earlier.of_type(PLAN):
        kept = later_by_urn[resource.urn]
        assert kept.inputs["name"] == resource.inputs["name"]
        assert kept.protect == resource.protect
