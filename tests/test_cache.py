"""The Redis tier: two replication groups joined by a Global Datastore that no DR state change touches."""

from __future__ import annotations

import pytest
from pulumi.runtime import rpc

from automation.evaluate import Evaluation
from components.cache import SEED_ROLE, Cache
from components.naming import cache_group_id, global_datastore_suffix
from tests.conftest import STATE_OVERRIDES, evaluate_state

GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
DATASTORE = "aws:elasticache/globalReplicationGroup:GlobalReplicationGroup"
CACHE_TYPES = (
    GROUP,
    DATASTORE,
    "aws:elasticache/subnetGroup:SubnetGroup",
    "aws:secretsmanager/secret:Secret",
    "aws:secretsmanager/secretVersion:SecretVersion",
    "random:index/randomPassword:RandomPassword",
)
# What a secondary member inherits from the datastore; declaring any is refused by the API or the provider.
DATASTORE_OWNED = {
    "engine",
    "engineVersion",
    "nodeType",
    "parameterGroupName",
    "atRestEncryptionEnabled",
    "transitEncryptionEnabled",
    "transitEncryptionMode",
    "numNodeGroups",
    "securityGroupNames",
    "snapshotArns",
    "snapshotName",
    "multiAzEnabled",
}


def _group(evaluation: Evaluation, role: str):
    return evaluation.one(GROUP, f"redis-{role}")


def _plain(value):
    """The value behind a secret marker, and whether it was secret."""
    if isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig:
        return value["value"], True
    return value, False


def test_seed_group_is_the_declared_primary_and_the_dr_group_joins(state_eval):
    cfg = state_eval.config
    datastore = state_eval.one(DATASTORE, "redis-global")
    seed, member = _group(state_eval, "primary"), _group(state_eval, "dr")

    assert datastore.inputs["primaryReplicationGroupId"] == cache_group_id(cfg, "primary")
    assert datastore.inputs["globalReplicationGroupIdSuffix"] == global_datastore_suffix(cfg)
    assert datastore.region == cfg.primary_region
    assert "globalReplicationGroupId" not in seed.inputs
    assert member.inputs["globalReplicationGroupId"] == state_eval.outputs["cache"]["globalDatastoreId"]
    assert state_eval.outputs["cache"] == {
        "globalDatastoreId": f"ldgnf-{global_datastore_suffix(cfg)}",
        "declaredPrimaryRegion": cfg.primary_region,
        "groups": {cfg.region_of(role): cache_group_id(cfg, role) for role in ("primary", "dr")},
    }


def test_each_group_is_encrypted_with_its_own_regions_key(state_eval):
    keys = state_eval.outputs["kmsKeys"]
    for role in ("primary", "dr"):
        group = _group(state_eval, role)
        assert group.region == state_eval.config.region_of(role)
        assert group.inputs["kmsKeyId"] == keys[group.region]
    seed = _group(state_eval, "primary")
    # The member inherits both switches from the datastore, which takes them from the seed.
    assert seed.inputs["atRestEncryptionEnabled"] is True
    assert seed.inputs["transitEncryptionEnabled"] is True


def test_groups_are_multi_az_with_automatic_failover_in_the_data_subnets(state_eval):
    cfg = state_eval.config
    for role in ("primary", "dr"):
        group = _group(state_eval, role)
        assert group.inputs["numCacheClusters"] == 1 + cfg.cache_replicas_per_group
        assert group.inputs["automaticFailoverEnabled"] is True
        subnets = state_eval.one("aws:elasticache/subnetGroup:SubnetGroup", f"redis-subnets-{role}")
        assert group.inputs["subnetGroupName"] == subnets.inputs["name"]
        assert len(subnets.inputs["subnetIds"]) == 3
        assert all(f"network-{role}-data-" in subnet for subnet in subnets.inputs["subnetIds"])
        (security_group,) = group.inputs["securityGroupIds"]
        assert security_group.startswith(f"network-{role}-cache-sg")


def test_the_member_declares_nothing_the_datastore_owns(steady):
    """catalogue: elasticache.global-datastore-member-inherits"""
    assert not DATASTORE_OWNED & set(_group(steady, "dr").inputs)
    # Multi-AZ: the seed's, inherited by the member, which neither sends it nor diffs on it.
    assert _group(steady, "primary").inputs["multiAzEnabled"] is True
    member = _group(steady, "dr")
    assert "multiAzEnabled" not in member.inputs and "multiAzEnabled" in member.ignore_changes
    # What a secondary may set itself, and what it needs in its own region.
    assert {"kmsKeyId", "authToken", "port", "snapshotRetentionLimit", "subnetGroupName"} <= set(member.inputs)
    datastore = steady.one(DATASTORE, "redis-global").inputs
    assert datastore["cacheNodeType"] == steady.config.cache_node_type
    assert datastore["engineVersion"] == steady.config.cache_engine_version


def test_both_groups_share_one_generated_auth_token_kept_secret(steady):
    seed_token, seed_secret = _plain(_group(steady, "primary").inputs["authToken"])
    member_token, member_secret = _plain(_group(steady, "dr").inputs["authToken"])
    assert seed_secret and member_secret
    assert seed_token == member_token and len(seed_token) >= 16
    for role in ("primary", "dr"):
        region = steady.config.region_of(role)
        secret = steady.one("aws:secretsmanager/secret:Secret", f"redis-auth-{role}")
        assert secret.region == region
        assert secret.inputs["kmsKeyId"] == steady.outputs["kmsKeys"][region]
        value, is_secret = _plain(
            steady.one("aws:secretsmanager/secretVersion:SecretVersion", f"redis-auth-{role}-value").inputs[
                "secretString"
            ]
        )
        assert is_secret and seed_token in value and f".{region}.cache.amazonaws.com" in value


def test_stateful_cache_resources_are_protected_and_ignore_what_a_failover_changes(steady):
    for role in ("primary", "dr"):
        group = _group(steady, role)
        assert group.protect and group.retain_on_delete
    datastore = steady.one(DATASTORE, "redis-global")
    assert datastore.protect
    # FailoverGlobalReplicationGroup moves the primary; the provider would replace the datastore to undo it
    # (catalogue: elasticache.global-datastore-primary-change-replaces).
    assert "primaryReplicationGroupId" in datastore.ignore_changes
    # After creation the datastore owns the seed's node type and engine version.
    assert {"nodeType", "engineVersion"} <= set(_group(steady, "primary").ignore_changes)


def _cache_declarations(evaluation: Evaluation) -> dict[str, tuple]:
    return {
        r.urn: (r.inputs, r.region, r.protect, r.retain_on_delete, r.ignore_changes)
        for r in evaluation.resources
        if r.type in CACHE_TYPES and "dr-platform:cache:Cache" in r.urn
    }


@pytest.mark.parametrize("state", [s for s in STATE_OVERRIDES if s != "steady"])
def test_no_dr_state_changes_any_cache_declaration(steady, state):
    """Same URNs, identifiers and inputs: no update plans a replacement, deletion or change of the cache tier."""
    baseline = _cache_declarations(steady)
    assert len(baseline) == 10  # four types per region; one datastore and one token for both
    assert _cache_declarations(evaluate_state(state)) == baseline


def test_a_cache_without_the_seed_role_is_refused():
    with pytest.raises(ValueError, match=f"needs the {SEED_ROLE} role"):
        Cache(
            "redis",
            {
                "regions": {},
                "global_datastore_suffix": "x-redis",
                "node_type": "cache.r7g.large",
                "engine_version": "7.1",
                "replicas_per_group": 1,
                "snapshot_retention_days": 7,
            },
        )
