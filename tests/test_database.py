import itertools

import pytest

from components.config import ConfigError, parse_config
from components.database import plan_instances
from tests.conftest import STATE_OVERRIDES, evaluate_state, prod_config

INSTANCE = "aws:rds/instance:Instance"
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
            for argument in ("username", "dbName", "password", "manageMasterUserPassword", "backupRetentionPeriod"):
                assert argument not in instance.inputs, (instance.name, argument)


def test_promoted_replicas_never_gain_creation_only_arguments():
    after_failback = evaluate_state("steady-after-failback")
    for name in ("database-primary-g2", "database-dr-g1"):
        promoted = after_failback.one(INSTANCE, name)
        assert "replicateSourceDb" not in promoted.inputs
        assert "username" not in promoted.inputs and "dbName" not in promoted.inputs


def test_standalone_instances_use_a_managed_secret_and_backups(state_eval):
    for instance in state_eval.of_type(INSTANCE):
        if "replicateSourceDb" in instance.inputs:
            continue
        assert instance.inputs["manageMasterUserPassword"] is True
        assert "password" not in instance.inputs
        assert instance.inputs["masterUserSecretKmsKeyId"] == _key_arn(state_eval, instance.region)
        assert instance.inputs["backupRetentionPeriod"] >= 7


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
