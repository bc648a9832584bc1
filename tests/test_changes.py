"""The change set: offline replace detection and the program's real DR transitions."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from automation.changes import (
    KUBERNETES_PROVIDER,
    STATEFUL_TYPES,
    Operation,
    ProviderSettings,
    changed_properties,
    diff,
    replace_reasons,
    replace_rules,
    rules_for,
    urn_name,
    urn_type,
)
from automation.evaluate import DeclaredResource, Evaluation, evaluate_program
from tests.conftest import ROOT, STATE_OVERRIDES, evaluate_features, evaluate_state

RDS = "aws:rds/instance:Instance"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


def _resource(type_token: str, name: str, inputs: dict, region: str = "us-east-1", **options) -> DeclaredResource:
    defaults = {
        "custom": True,
        "parent": "",
        "protect": False,
        "retain_on_delete": False,
        "ignore_changes": (),
        "replace_on_changes": (),
        "delete_before_replace": False,
    }
    return DeclaredResource(
        urn=f"urn:pulumi:prod::dr-platform::{type_token}::{name}",
        type=type_token,
        name=name,
        inputs=inputs,
        region=region,
        **{**defaults, **options},
    )


def _evaluation(*resources: DeclaredResource) -> Evaluation:
    return Evaluation(config=evaluate_state("steady").config, resources=list(resources))


DB_INPUTS = {"identifier": "acme-drp-use1-pg-g1", "instanceClass": "db.r6g.large", "kmsKeyId": "arn:key/1"}
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"


def test_a_force_new_property_change_is_a_replace():
    before = _evaluation(_resource(RDS, "db", DB_INPUTS))
    after = _evaluation(_resource(RDS, "db", {**DB_INPUTS, "kmsKeyId": "arn:key/2", "instanceClass": "db.r6g.xl"}))
    (change,) = diff(before, after).changes
    assert change.operation is Operation.REPLACE
    assert change.changed == ("instanceClass", "kmsKeyId")
    assert change.replace_reasons == ("kmsKeyId",)
    assert change.at_risk


def test_an_in_place_property_change_is_an_update():
    before = _evaluation(_resource(RDS, "db", DB_INPUTS))
    after = _evaluation(_resource(RDS, "db", {**DB_INPUTS, "instanceClass": "db.r6g.xl"}))
    (change,) = diff(before, after).changes
    assert change.operation is Operation.UPDATE
    assert not change.at_risk


def test_promotion_by_dropping_the_replication_source_is_an_update():
    replica = {**DB_INPUTS, "replicateSourceDb": "arn:aws:rds:us-east-1:1:db:primary"}
    before = _evaluation(_resource(RDS, "db", replica, region="us-west-2"))
    after = _evaluation(_resource(RDS, "db", DB_INPUTS, region="us-west-2"))
    (change,) = diff(before, after).changes
    assert change.operation is Operation.UPDATE
    assert change.changed == ("replicateSourceDb",)


def test_ignore_changes_hides_a_force_new_change():
    before = _evaluation(_resource(RDS, "db", DB_INPUTS))
    after = _evaluation(_resource(RDS, "db", {**DB_INPUTS, "kmsKeyId": "arn:key/2"}, ignore_changes=("kmsKeyId",)))
    (change,) = diff(before, after).changes
    assert change.operation is Operation.SAME


def test_ignore_changes_masks_nested_paths_only():
    old = {"tags": {"Name": "a", "team": "x"}, "bucket": "b"}
    assert changed_properties(old, {**old, "tags": {"Name": "b", "team": "x"}}, ['tags["Name"]']) == ()
    assert changed_properties(old, {**old, "tags": {"Name": "a", "team": "y"}}, ['tags["Name"]']) == ("tags",)
    rules = {"rules": [{"cidr": "10.0.0.0/16", "port": 1}]}
    assert changed_properties(rules, {"rules": [{"cidr": "10.1.0.0/16", "port": 1}]}, ["rules[*].cidr"]) == ()
    assert changed_properties(rules, {"rules": [{"cidr": "10.0.0.0/16", "port": 2}]}, ["rules[0].cidr"]) == ("rules",)


def test_replace_on_changes_and_region_force_replacement():
    """catalogue: pulumi-aws.region-change-replaces"""
    assert replace_reasons(ALARM, ["threshold"]) == ()
    assert replace_reasons(ALARM, ["threshold"], ["threshold"]) == ("threshold",)
    assert replace_reasons(ALARM, ["threshold", "period"], ["*"]) == ("threshold", "period")
    assert replace_reasons(ALARM, ["region"]) == ("region",)


def test_creates_and_deletes_carry_the_options_that_decide_their_fate():
    kept = _resource(RDS, "old", DB_INPUTS, protect=True, retain_on_delete=True)
    before = _evaluation(kept, _resource(ALARM, "alarm", {}))
    after = _evaluation(_resource(ALARM, "alarm", {}), _resource(ALARM, "new", {}))
    changes = {c.name: c for c in diff(before, after).changes}
    assert changes["new"].operation is Operation.CREATE
    assert changes["alarm"].operation is Operation.SAME
    assert changes["old"].operation is Operation.DELETE
    assert changes["old"].protect and changes["old"].retain_on_delete and changes["old"].at_risk
    assert diff(before, after).counts() == {"create": 1, "update": 0, "replace": 0, "delete": 1, "same": 1}


def test_components_are_not_part_of_the_change_set():
    component = _resource("dr-platform:data:Database", "database", {}, custom=False)
    assert diff(_evaluation(component), _evaluation()).changes == ()


# --- the derived table (catalogue: pulumi-aws.force-new-from-provider-schema) ---------------


def _declared_types() -> set[str]:
    types = set(STATEFUL_TYPES)
    for evaluation in (*(evaluate_state(state) for state in STATE_OVERRIDES), evaluate_features()):
        types |= {r.type for r in evaluation.resources if r.custom}
    return {t for t in types if t.split(":")[0] in ("aws", "kubernetes")}


def test_every_aws_provider_tags_what_it_manages_with_the_stack_the_drill_role_is_scoped_by(steady):
    from bootstrap.iam import STACK_TAG

    providers = steady.of_type("pulumi:providers:aws")
    assert len(providers) == 2
    for provider in providers:
        default_tags = provider.inputs["defaultTags"]
        tags = (json.loads(default_tags) if isinstance(default_tags, str) else default_tags)["tags"]
        assert tags[STACK_TAG] == "prod"


def test_a_change_of_default_tags_updates_resources_and_replaces_only_those_whose_tags_force_it():
    """catalogue: pulumi-aws.default-tags-update-in-place (FIS templates hold no state: replacing them is harmless)"""
    from tests.conftest import FEATURE_OVERRIDES, prod_config

    before = evaluate_features()
    after = evaluate_program(prod_config(**FEATURE_OVERRIDES, tags='{"team": "platform", "cost-center": "dr"}'))
    changes = diff(before, after)
    replaced = {c.type for c in changes.changes if c.operation is Operation.REPLACE}
    assert replaced == {"aws:fis/experimentTemplate:ExperimentTemplate"}
    assert all("tags" in c.replace_reasons for c in changes.changes if c.operation is Operation.REPLACE)
    updated = [c for c in changes.changes if c.operation is Operation.UPDATE]
    assert {c.type for c in updated} >= {"aws:rds/instance:Instance", "aws:s3/bucket:Bucket", "pulumi:providers:aws"}
    assert changes.at_risk() == []


def test_the_table_covers_every_type_the_program_declares_or_calls_stateful():
    missing = sorted(t for t in _declared_types() if rules_for(t) is None)
    assert missing == []


def test_the_table_names_the_provider_versions_it_was_derived_from():
    from importlib import metadata

    aws = replace_rules()["aws"]
    assert aws["upstream"].startswith("terraform-provider-aws v6.")
    assert len(aws["sourceCommit"]) == 40
    # The table follows the provider's minor release: requirements.txt keeps pulumi-aws on that minor
    # (patch releases rebuild the same upstream schema), and a bump regenerates the table.
    derived_minor = aws["pulumiPackage"].removeprefix("pulumi-aws ").rsplit(".", 1)[0]
    assert metadata.version("pulumi-aws").rsplit(".", 1)[0] == derived_minor, "regenerate for the pinned SDK"
    pin = next(line for line in (ROOT / "requirements.txt").read_text().splitlines() if line.startswith("pulumi-aws"))
    assert pin == f"pulumi-aws~={aws['pulumiPackage'].removeprefix('pulumi-aws ')}", "pin the minor the table is for"
    assert "pulumi-kubernetes" in replace_rules()["kubernetes"]["source"]


def test_every_rule_names_a_real_input_of_the_pulumi_sdk():
    """Guards the generated names: each path is a chain of wire names the SDK declares."""
    import importlib
    import keyword

    for type_token, entry in replace_rules()["aws"]["resources"].items():
        module, class_name = type_token.split(":")[1].split("/")[0], type_token.split(":")[2]
        package = f"pulumi_aws.{module}_" if keyword.iskeyword(module) else f"pulumi_aws.{module}"
        resource = importlib.import_module(getattr(importlib.import_module(package), class_name).__module__)
        source = Path(importlib.util.find_spec(resource.__name__).origin)
        text = source.read_text() + (source.parent / "_inputs.py").read_text()
        for rule in entry["rules"]:
            for part in rule["path"].split("."):
                assert f'name="{part}"' in text or f"def {part}(self)" in text, f"{type_token}: {rule['path']}"


@pytest.mark.parametrize(
    ("type_token", "path"),
    [
        ("aws:route53/healthCheck:HealthCheck", "type"),
        ("aws:cloudwatch/metricAlarm:MetricAlarm", "name"),  # Terraform's alarm_name
        ("aws:s3/bucketReplicationConfig:BucketReplicationConfig", "bucket"),
        (NODE_GROUP, "launchTemplate.id"),
        (NODE_GROUP, "launchTemplate.name"),
        (CACHE, "engine"),
        (CACHE, "engineVersion"),
    ],
)
def test_the_replacements_the_hand_kept_table_missed_are_in_the_derived_one(type_token, path):
    assert path in {rule["path"] for rule in rules_for(type_token)["rules"]}


def test_a_resource_without_an_update_is_replaced_by_any_change():
    """catalogue: pulumi-aws.no-update-replaces"""
    selection = "aws:backup/selection:Selection"
    assert rules_for(selection)["updatable"] is False
    reasons = replace_reasons(selection, ["resources"], old={"resources": ["a"]}, new={"resources": ["b"]})
    assert reasons == ("resources (no in-place update)",)


def test_a_nested_force_new_attribute_replaces_only_when_it_changes():
    old = {"launchTemplate": {"id": "lt-1", "version": "1"}, "scalingConfig": {"desiredSize": 2}}
    version_bump = {**old, "launchTemplate": {"id": "lt-1", "version": "2"}}
    other_template = {**old, "launchTemplate": {"id": "lt-2", "version": "1"}}
    assert replace_reasons(NODE_GROUP, ["launchTemplate"], old=old, new=version_bump) == ()
    assert replace_reasons(NODE_GROUP, ["launchTemplate"], old=old, new=other_template) == ("launchTemplate.id",)


def test_an_optional_computed_force_new_attribute_left_out_keeps_its_value():
    """kmsKeyId is Optional+Computed: dropping it from the program is no diff, changing it replaces."""
    assert replace_reasons(RDS, ["kmsKeyId"], old=DB_INPUTS, new={**DB_INPUTS, "kmsKeyId": None}) == ()
    assert replace_reasons(RDS, ["kmsKeyId"], old=DB_INPUTS, new={**DB_INPUTS, "kmsKeyId": "k2"}) == ("kmsKeyId",)


def test_a_database_identifier_renames_in_place():
    """terraform-provider-aws's identifier is not ForceNew: ModifyDBInstance renames the instance."""
    renamed = {**DB_INPUTS, "identifier": "acme-drp-use1-pg-g9"}
    assert replace_reasons(RDS, ["identifier"], old=DB_INPUTS, new=renamed) == ()


def test_a_cache_engine_version_downgrade_replaces_and_an_upgrade_does_not():
    """catalogue: pulumi-aws.elasticache-engine-version-downgrade-replaces"""
    old = {"engine": "redis", "engineVersion": "7.1"}
    assert replace_reasons(CACHE, ["engineVersion"], old=old, new={**old, "engineVersion": "6.2"}) == ("engineVersion",)
    assert replace_reasons(CACHE, ["engineVersion"], old=old, new={**old, "engineVersion": "7.2"}) == ()
    member = {**old, "globalReplicationGroupId": "ldgnf-x"}
    assert replace_reasons(CACHE, ["engineVersion"], old=member, new={**member, "engineVersion": "6.2"}) == ()


def test_a_cache_engine_change_replaces_except_redis_to_valkey():
    """catalogue: pulumi-aws.elasticache-engine-change-replaces"""
    old = {"engine": "valkey", "engineVersion": "8.0"}
    assert replace_reasons(CACHE, ["engine"], old=old, new={**old, "engine": "redis"}) == ("engine",)
    upgrade = {"engine": "redis", "engineVersion": "7.1"}
    assert replace_reasons(CACHE, ["engine"], old=upgrade, new={**upgrade, "engine": "valkey"}) == ()


def test_an_unmodelled_condition_is_assumed_to_replace():
    old = {"transitEncryptionEnabled": False}
    (reason,) = replace_reasons(CACHE, ["transitEncryptionEnabled"], old=old, new={"transitEncryptionEnabled": True})
    assert reason.startswith("transitEncryptionEnabled (replaces if") and reason.endswith("assumed)")


def test_a_config_map_data_change_replaces_it_unless_the_provider_makes_config_maps_mutable():
    """catalogue: pulumi-kubernetes.configmap-data-replaces-unless-mutable"""
    old, new = {"data": {"a": "1"}}, {"data": {"a": "2"}}
    assert replace_reasons(CONFIG_MAP, ["data"], old=old, new=new) == ("data",)
    mutable = ProviderSettings(config_map_mutable=True)
    assert replace_reasons(CONFIG_MAP, ["data"], old=old, new=new, provider=mutable) == ()
    pinned = {**new, "immutable": True}
    assert replace_reasons(CONFIG_MAP, ["data"], old=old, new=pinned, provider=mutable) == ("data",)


def test_kubernetes_identity_and_storage_class_parameters_replace():
    """catalogue: pulumi-kubernetes.replace-table"""
    storage_class = "kubernetes:storage.k8s.io/v1:StorageClass"
    old = {"metadata": {"name": "gp3"}, "parameters": {"type": "gp3"}}
    assert replace_reasons(storage_class, ["parameters"], old=old, new={**old, "parameters": {"type": "io2"}}) == (
        "parameters",
    )
    release = "kubernetes:helm.sh/v3:Release"
    assert replace_reasons(release, ["namespace"], old={"namespace": "a"}, new={"namespace": "b"}) == ("namespace",)
    assert replace_reasons(release, ["values"], old={"values": {}}, new={"values": {"x": 1}}) == ()


def test_urn_helpers_read_the_type_and_name_from_a_nested_urn():
    urn = "urn:pulumi:prod::dr-platform::dr-platform:data:Database$aws:rds/instance:Instance::database-dr-g1"
    assert urn_type(urn) == RDS
    assert urn_name(urn) == "database-dr-g1"


# --- the program's real transitions ----------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [("steady", "failed-over"), ("failed-over", "resyncing"), ("resyncing", "steady-after-failback")],
)
def test_no_dr_transition_replaces_or_deletes_a_stateful_resource(before, after):
    changes = diff(evaluate_state(before), evaluate_state(after))
    assert changes.effective(), "a transition that changes nothing would not be a transition"
    assert [f"{c.operation.value} {c.name}" for c in changes.at_risk()] == []


def test_failover_promotes_the_dr_database_and_leaves_the_old_primary_alone():
    before, after = evaluate_state("steady"), evaluate_state("failed-over")
    databases = {c.region: c for c in diff(before, after).changes if c.type == RDS}
    assert databases[before.config.dr_region].operation is Operation.UPDATE
    assert "replicateSourceDb" in databases[before.config.dr_region].changed
    assert databases[before.config.primary_region].operation is Operation.SAME


def test_failback_prepare_creates_a_new_primary_generation_and_keeps_the_old_one():
    changes = diff(evaluate_state("failed-over"), evaluate_state("resyncing"))
    primary = evaluate_state("resyncing").config.primary_region
    databases = [c for c in changes.in_region(primary) if c.type == RDS]
    assert {c.operation for c in databases} == {Operation.CREATE, Operation.SAME}


def test_a_changed_database_encryption_key_would_be_flagged(steady):
    """A new KMS key cannot be applied to a running instance: every database would be replaced."""
    rekeyed = [
        replace(r, inputs={**r.inputs, "kmsKeyId": "arn:other"}) if r.type == RDS else r for r in steady.resources
    ]
    at_risk = diff(steady, Evaluation(steady.config, rekeyed)).at_risk()
    assert at_risk and {c.type for c in at_risk} == {RDS}
    assert all(c.replace_reasons == ("kmsKeyId",) for c in at_risk)
    assert RDS in STATEFUL_TYPES


TRANSITIONS = [("steady", "failed-over"), ("failed-over", "resyncing"), ("resyncing", "steady-after-failback")]


@pytest.mark.parametrize(("before", "after"), TRANSITIONS)
def test_every_transition_updates_the_dr_status_dashboards_in_place(before, after):
    """The program's Kubernetes providers set enableConfigMapMutable: the plan says update, and so does the engine."""
    dashboards = [c for c in diff(evaluate_state(before), evaluate_state(after)).changes if c.type == CONFIG_MAP]
    changed = {c.name: c.operation for c in dashboards if c.operation is not Operation.SAME}
    assert set(changed) == {"monitoring-primary-dashboard-dr-status", "monitoring-dr-dashboard-dr-status"}
    assert set(changed.values()) == {Operation.UPDATE}


def test_without_mutable_config_maps_every_transition_would_replace_the_dashboards():
    """The same transition against providers that leave enableConfigMapMutable unset: delete and recreate."""

    def immutable(evaluation: Evaluation) -> Evaluation:
        resources = [
            replace(r, inputs={k: v for k, v in r.inputs.items() if k != "enableConfigMapMutable"})
            if r.type == KUBERNETES_PROVIDER
            else r
            for r in evaluation.resources
        ]
        return Evaluation(evaluation.config, resources)

    changes = diff(immutable(evaluate_state("steady")), immutable(evaluate_state("failed-over")))
    replaced = [c for c in changes.changes if c.type == CONFIG_MAP and c.operation is Operation.REPLACE]
    assert len(replaced) == 2 and all(c.replace_reasons == ("data",) for c in replaced)


def test_each_config_map_follows_the_provider_that_manages_it_not_its_region():
    """Only the DR cluster's provider leaves ConfigMaps immutable: only the DR dashboard would be replaced."""
    steady, failed_over = evaluate_state("steady"), evaluate_state("failed-over")
    dr_provider = next(r for r in failed_over.resources if r.type == KUBERNETES_PROVIDER and r.name == "eks-dr-k8s")

    def dr_immutable(evaluation: Evaluation) -> Evaluation:
        resources = [
            replace(r, inputs={k: v for k, v in r.inputs.items() if k != "enableConfigMapMutable"})
            if r.urn == dr_provider.urn
            else r
            for r in evaluation.resources
        ]
        return Evaluation(evaluation.config, resources)

    dashboards = {
        c.name: c.operation
        for c in diff(dr_immutable(steady), dr_immutable(failed_over)).changes
        if c.type == CONFIG_MAP and c.operation is not Operation.SAME
    }
    assert dashboards == {
        "monitoring-dr-dashboard-dr-status": Operation.REPLACE,
        "monitoring-primary-dashboard-dr-status": Operation.UPDATE,
    }
    objects = [r for r in steady.resources if r.type.startswith("kubernetes:") and r.custom]
    providers = {r.provider.rsplit("::", 1)[-1] for r in objects}
    assert objects and providers == {"eks-primary-k8s", "eks-dr-k8s"}


@pytest.mark.parametrize(("before", "after"), TRANSITIONS)
def test_every_predicted_operation_in_a_transition_follows_the_providers_rules(before, after):
    """Nothing replaces in a DR transition; each update changes no property the table says replaces."""
    for change in diff(evaluate_state(before), evaluate_state(after)).effective():
        assert change.operation is not Operation.REPLACE, f"{change.name}: {change.replace_reasons}"
        if change.operation is Operation.DELETE:
            assert not change.stateful, change.name
        if change.operation is Operation.UPDATE:
            entry = rules_for(change.type)
            assert entry is not None, f"{change.type} has no replace rules"
            assert entry.get("updatable", True), f"{change.name} cannot be updated in place"
