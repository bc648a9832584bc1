import itertools
from typing import Any

import pytest
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

from automation.evaluate import evaluate_program
from components.config import ConfigError, parse_config
from components.database import plan_instances
from tests.conftest import STATE_OVERRIDES, evaluate_state, prod_config

INSTANCE = "aws:rds/instance:Instance"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
TRANSITIONS = ("steady", "failed-over", "resyncing", "steady-after-failback")


def _plan(state: str) -> dict[str, tuple]:
    """identifier -> (source identifier or None, retained) for a state."""
    cfg = parse_config(prod_config(**STATE_OVERRIDES[state]))
    planned = plan_instances(cfg)
    by_key = {(p.role, p.generation): p.identifier for p in planned}
    return {p.identifier: (by_key[p.source] if p.source else None, p.retained) for p in planned}


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("steady", {"acme-drp-use1-pg-g1": (None, False), "acme-drp-usw2-pg-g1": ("acme-drp-use1-pg-g1", False)}),
        ("failed-over", {"acme-drp-use1-pg-g1": (None, False), "acme-drp-usw2-pg-g1": (None, False)}),
        (
            "resyncing",
            {
                "acme-drp-use1-pg-g1": (None, True),
                "acme-drp-use1-pg-g2": ("acme-drp-usw2-pg-g1", False),
                "acme-drp-usw2-pg-g1": (None, False),
            },
        ),
        (
            "steady-after-failback",
            {
                "acme-drp-use1-pg-g1": (None, True),
                "acme-drp-use1-pg-g2": (None, False),
                "acme-drp-usw2-pg-g1": (None, True),
                "acme-drp-usw2-pg-g2": ("acme-drp-use1-pg-g2", False),
            },
        ),
    ],
)
def test_plan_per_state(state, expected):
    assert _plan(state) == expected


def test_plan_refuses_to_turn_a_promoted_dr_generation_back_into_a_replica():
    """catalogue: rds.replica-cannot-change-source"""
    # Failback switched back to steady without raising the DR generation.
    raw = prod_config(dbGeneration='{"primary": 2, "dr": 1}', dbRetainedGenerations='{"primary": [1], "dr": []}')
    with pytest.raises(ConfigError) as caught:
        plan_instances(parse_config(raw))
    assert caught.value.key == "dbGeneration.dr"
    assert "promoted" in str(caught.value)


def test_only_the_first_primary_generation_is_created_with_credentials():
    cfg = parse_config(prod_config(**STATE_OVERRIDES["steady-after-failback"]))
    born_writers = [p.identifier for p in plan_instances(cfg) if not p.created_as_replica]
    assert born_writers == ["acme-drp-use1-pg-g1"]


def test_writer_and_replica_per_state(state_eval):
    cfg = state_eval.config
    database = state_eval.outputs["database"]
    writers = [region for region, db in database.items() if db["role"] == "writer"]
    assert writers == [cfg.active_region]
    for region, db in database.items():
        declared = state_eval.one(INSTANCE, f"database-{cfg.role_of(region)}-g{db['generation']}")
        assert declared.inputs["identifier"] == db["identifier"]
        assert declared.region == region
        if db["role"] == "replica":
            other = cfg.dr_region if region == cfg.primary_region else cfg.primary_region
            # A replica follows the other region's current writer, by ARN (cross-region).
            assert db["sourceArn"] == database[other]["arn"] == declared.inputs["replicateSourceDb"]
            assert database[other]["role"] == "writer"
        else:
            assert db["sourceArn"] is None
            assert "replicateSourceDb" not in declared.inputs


def test_failed_over_keeps_the_failed_primary_declaration_unchanged(steady, failed_over):
    before = steady.one(INSTANCE, "database-primary-g1")
    after = failed_over.one(INSTANCE, "database-primary-g1")
    assert after.inputs == before.inputs
    assert failed_over.outputs["database"]["us-east-1"]["role"] == "detached"
    promoted = failed_over.one(INSTANCE, "database-dr-g1")
    assert "replicateSourceDb" not in promoted.inputs
    assert promoted.inputs["backupRetentionPeriod"] >= 7


def test_failed_over_touches_no_data_tier_resource_in_the_primary_region(steady, failed_over):
    def in_primary(evaluation):
        data_tier = ("aws:rds/", "aws:s3/", "aws:backup/")
        return {
            r.urn: r.inputs for r in evaluation.resources if r.region == "us-east-1" and r.type.startswith(data_tier)
        }

    assert in_primary(failed_over) == in_primary(steady)


def test_resyncing_keeps_the_former_writer_for_forensics(failed_over, resyncing):
    former = resyncing.one(INSTANCE, "database-primary-g1")
    assert former.inputs == failed_over.one(INSTANCE, "database-primary-g1").inputs
    assert former.protect and former.retain_on_delete
    assert resyncing.outputs["database"]["us-east-1"]["retained"] == ["acme-drp-use1-pg-g1"]


def test_replicas_carry_no_creation_only_arguments(state_eval):
    for instance in state_eval.of_type(INSTANCE):
        if "replicateSourceDb" in instance.inputs:
            for argument in ("username", "dbName", "password", "manageMasterUserPassword"):
                assert argument not in instance.inputs, (instance.name, argument)


def test_every_instance_keeps_automated_backups_so_promotion_changes_no_retention():
    """catalogue: rds.postgres-replica-automated-backups (replicas too: enabling backups costs an outage)."""
    for state in TRANSITIONS:
        evaluation = evaluate_state(state)
        for instance in evaluation.of_type(INSTANCE):
            assert instance.inputs["backupRetentionPeriod"] == evaluation.config.db_backup_retention_days
    replica = evaluate_state("steady").one(INSTANCE, "database-dr-g1")
    promoted = evaluate_state("failed-over").one(INSTANCE, "database-dr-g1")
    assert "replicateSourceDb" in replica.inputs and "replicateSourceDb" not in promoted.inputs
    # What promotion changes: the source, the password, and the delete-time-only snapshot settings.
    changed = {k for k in {*replica.inputs, *promoted.inputs} if replica.inputs.get(k) != promoted.inputs.get(k)}
    assert changed == {"replicateSourceDb", "password", "skipFinalSnapshot", "finalSnapshotIdentifier"}


def test_instances_back_up_and_are_maintained_in_the_pinned_windows(state_eval):
    """catalogue: rds.backup-and-maintenance-windows (apart from AWS Backup's start windows)."""
    for instance in state_eval.of_type(INSTANCE):
        assert instance.inputs["backupWindow"] == state_eval.config.db_backup_window == "03:00-03:30"
        assert instance.inputs["maintenanceWindow"] == state_eval.config.db_maintenance_window


def test_promoted_replicas_never_gain_creation_only_arguments():
    after_failback = evaluate_state("steady-after-failback")
    for name in ("database-primary-g2", "database-dr-g1"):
        promoted = after_failback.one(INSTANCE, name)
        assert "replicateSourceDb" not in promoted.inputs
        assert "username" not in promoted.inputs and "dbName" not in promoted.inputs


@pytest.mark.parametrize("state", TRANSITIONS)
def test_no_replica_source_manages_its_master_password_in_any_state(state):
    """catalogue: rds.replica-source-managed-password"""
    evaluation = evaluate_state(state)
    instances = evaluation.of_type(INSTANCE)
    by_arn = {
        evaluation.outputs["database"][i.region]["arn"]: i for i in instances if not i.inputs.get("replicateSourceDb")
    }
    replicas = [i for i in instances if i.inputs.get("replicateSourceDb")]
    assert replicas or state == "failed-over"
    for replica in replicas:
        source = by_arn[replica.inputs["replicateSourceDb"]]
        assert not source.inputs.get("manageMasterUserPassword"), (state, source.name)
        assert is_rpc_secret(source.inputs["password"])
        # catalogue: rds.replica-source-needs-backups
        assert source.inputs["backupRetentionPeriod"] >= 1
    assert not any(i.inputs.get("manageMasterUserPassword") for i in instances)
    assert not any("masterUserSecretKmsKeyId" in i.inputs for i in instances)


def test_standalone_instances_carry_the_programs_password_and_backups(state_eval):
    for instance in state_eval.of_type(INSTANCE):
        if "replicateSourceDb" in instance.inputs:
            continue
        assert _password(state_eval) == unwrap_rpc_secret(instance.inputs["password"])
        assert instance.inputs["backupRetentionPeriod"] >= 7


def test_a_promoted_replica_declares_the_password_it_inherited(steady, failed_over):
    """The replica inherited its source's password: declaring the same value resets nothing."""
    writer = steady.one(INSTANCE, "database-primary-g1")
    promoted = failed_over.one(INSTANCE, "database-dr-g1")
    assert "password" not in steady.one(INSTANCE, "database-dr-g1").inputs
    assert unwrap_rpc_secret(promoted.inputs["password"]) == unwrap_rpc_secret(writer.inputs["password"])


def test_the_master_secret_is_in_the_primary_region_and_replicated_to_dr(state_eval):
    keys = state_eval.outputs["kmsKeys"]
    secret = state_eval.one(SECRET, "database-master-secret")
    assert secret.region == "us-east-1"
    assert secret.inputs["name"] == "acme-drp-pg-master"
    # Each copy is encrypted with its own region's key.
    assert secret.inputs["kmsKeyId"] == keys["us-east-1"]
    assert secret.inputs["replicas"] == [{"region": "us-west-2", "kmsKeyId": keys["us-west-2"]}]
    assert secret.protect and secret.retain_on_delete
    credentials = state_eval.outputs["databaseCredentials"]
    assert credentials["secretName"] == "acme-drp-pg-master"
    assert credentials["regions"] == ["us-east-1", "us-west-2"]
    (value,) = [v for v in state_eval.of_type(SECRET_VERSION) if v.name == "database-master-secret-value"]
    assert value.region == "us-east-1" and is_rpc_secret(value.inputs["secretString"])
    assert '"username": "dbadmin"' in unwrap_rpc_secret(value.inputs["secretString"])


def test_the_master_secret_is_the_same_in_every_state(steady):
    """It holds no endpoint, so no transition touches it (the failed region above all)."""

    def declared(evaluation):
        return [(r.urn, r.inputs) for r in evaluation.resources if r.name.startswith("database-master-")]

    for state in TRANSITIONS:
        assert declared(evaluate_state(state)) == declared(steady)


@pytest.mark.parametrize("state", TRANSITIONS)
def test_the_password_is_never_plaintext_in_any_declared_input(state):
    evaluation = evaluate_state(state)
    password = _password(evaluation)
    leaks = [r.name for r in evaluation.resources if password in _plain_text(r.inputs)]
    assert leaks == []
    # It is there, in secrets: the instances and the secret's value carry it.
    assert any(password in str(unwrap_rpc_secret(v)) for r in evaluation.resources for v in r.inputs.values())


def test_every_instance_applies_changes_at_once():
    """catalogue: rds.modify-waits-for-maintenance-window"""
    for state in TRANSITIONS:
        for instance in evaluate_state(state).of_type(INSTANCE):
            assert instance.inputs["applyImmediately"] is True, (state, instance.name)


def test_timeouts_are_sized_to_the_volume_and_the_same_in_every_state():
    """catalogue: rds.cross-region-replica-creation-time"""
    timeouts = {
        state: {i.name: dict(i.custom_timeouts) for i in evaluate_state(state).of_type(INSTANCE)}
        for state in TRANSITIONS
    }
    steady = timeouts["steady"]
    # 500 GiB of dbMaxAllocatedStorageGb at the estimated 50 GiB/h, plus 2 h.
    assert steady["database-dr-g1"] == {"create": "12h", "update": "12h", "delete": "2h"}
    assert steady["database-primary-g1"] == {"create": "2h", "update": "12h", "delete": "2h"}
    for state, declared in timeouts.items():
        for name, value in declared.items():
            assert value == timeouts["steady-after-failback"][name], (state, name)
    bigger = evaluate_program(prod_config(dbAllocatedStorageGb="2000", dbMaxAllocatedStorageGb="4000"))
    assert bigger.one(INSTANCE, "database-dr-g1").custom_timeouts["create"] == "82h"


def test_the_generated_password_is_one_rds_accepts():
    """catalogue: rds.master-password-characters"""
    generator = evaluate_state("steady").one("random:index/randomPassword:RandomPassword", "database-master-password")
    assert 8 <= generator.inputs["length"] <= 128
    # Letters and digits only: none of RDS's refused characters, nothing a connection URI must escape.
    assert generator.inputs["special"] is False


def _password(evaluation) -> str:
    writer = next(i for i in evaluation.of_type(INSTANCE) if "password" in i.inputs)
    return unwrap_rpc_secret(writer.inputs["password"])


def _plain_text(value: Any) -> str:
    """Every string in `value` outside a secret, joined: what state would hold in the clear."""
    if is_rpc_secret(value):
        return ""
    if isinstance(value, dict):
        return " ".join(_plain_text(v) for v in value.values())
    if isinstance(value, list):
        return " ".join(_plain_text(v) for v in value)
    return value if isinstance(value, str) else ""


def test_every_instance_is_encrypted_hardened_and_protected(state_eval):
    """catalogue: rds.replica-kms-key-in-own-region"""
    cfg = state_eval.config
    for instance in state_eval.of_type(INSTANCE):
        key = _key_arn(state_eval, instance.region)
        inputs = instance.inputs
        assert inputs["storageEncrypted"] is True and inputs["kmsKeyId"] == key
        assert inputs["performanceInsightsEnabled"] is True
        assert inputs["performanceInsightsKmsKeyId"] == key
        assert inputs["performanceInsightsRetentionPeriod"] == cfg.db_performance_insights_retention_days
        assert inputs["multiAz"] is True and inputs["deletionProtection"] is True
        assert inputs["storageType"] == "gp3" and inputs["copyTagsToSnapshot"] is True
        assert inputs["publiclyAccessible"] is False
        # catalogue: rds.delete-replica-refuses-final-snapshot
        if "replicateSourceDb" in inputs:
            assert inputs["skipFinalSnapshot"] is True and "finalSnapshotIdentifier" not in inputs
        else:
            assert inputs["skipFinalSnapshot"] is False
            assert inputs["finalSnapshotIdentifier"] == f"{inputs['identifier']}-final"
        assert set(inputs["enabledCloudwatchLogsExports"]) == {"postgresql", "upgrade"}
        assert instance.protect and instance.retain_on_delete


def test_parameter_groups_force_tls_and_leave_read_only_to_drctl(steady):
    groups = steady.of_type("aws:rds/parameterGroup:ParameterGroup")
    assert sorted(g.region for g in groups) == sorted(steady.regions())
    for group in groups:
        assert group.inputs["family"] == "postgres16"
        parameters = {p["name"]: p["value"] for p in group.inputs["parameters"]}
        assert parameters["rds.force_ssl"] == "1"
        assert "default_transaction_read_only" not in parameters
    for instance in steady.of_type(INSTANCE):
        group = next(g for g in groups if g.region == instance.region)
        assert instance.inputs["parameterGroupName"] == group.inputs["name"]


@pytest.mark.parametrize(("before", "after"), list(itertools.pairwise(TRANSITIONS)))
def test_no_instance_disappears_or_changes_identity_between_states(before, after):
    earlier, later = evaluate_state(before), evaluate_state(after)
    later_by_urn = later.by_urn()
    for instance in earlier.of_type(INSTANCE):
        kept = later_by_urn.get(instance.urn)
        assert kept is not None, f"{instance.name} disappears going {before} -> {after}"
        assert kept.inputs["identifier"] == instance.inputs["identifier"]
        assert kept.inputs["kmsKeyId"] == instance.inputs["kmsKeyId"]
        assert kept.protect and kept.retain_on_delete
        # A standalone instance can never be made a replica again.
        if "replicateSourceDb" not in instance.inputs:
            assert "replicateSourceDb" not in kept.inputs


def _key_arn(evaluation, region: str) -> str:
    return evaluation.outputs["kmsKeys"][region]
