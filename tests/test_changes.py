"""The change set: offline replace detection and the program's real DR transitions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from automation.changes import (
    FORCE_NEW,
    STATEFUL_TYPES,
    Operation,
    changed_properties,
    diff,
    replace_reasons,
    urn_name,
    urn_type,
)
from automation.evaluate import DeclaredResource, Evaluation
from tests.conftest import evaluate_state

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


def test_every_force_new_table_entry_is_a_real_input_of_the_provider():
    """Guards the table against typos: each name must be a wire name the SDK declares."""
    import importlib
    import inspect
    import re

    for type_token, properties in FORCE_NEW.items():
        package, module_path, class_name = re.fullmatch(r"(\w+):([\w/]+):(\w+)", type_token).groups()
        module = importlib.import_module(f"pulumi_aws.{module_path.split('/')[0]}")
        source = inspect.getsource(getattr(module, class_name))
        declared = set(re.findall(r'@pulumi\.getter\(name="(\w+)"\)', source)) | set(
            re.findall(r"def (\w+)\(self\)", source)
        )
        assert package == "aws"
        missing = {p for p in properties if p not in declared and _snake(p) not in declared}
        assert not missing, f"{type_token}: {missing}"


def _snake(name: str) -> str:
    import re

    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


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


def test_a_changed_database_identifier_would_be_flagged(steady):
    """Renaming the stack's prefix is the classic accident: every named stateful resource is replaced."""
    renamed = [
        replace(r, inputs={**r.inputs, "identifier": "other-" + r.inputs["identifier"]}) if r.type == RDS else r
        for r in steady.resources
    ]
    at_risk = diff(steady, Evaluation(steady.config, renamed)).at_risk()
    assert at_risk and {c.type for c in at_risk} == {RDS}
    assert all(c.replace_reasons == ("identifier",) for c in at_risk)
    assert RDS in STATEFUL_TYPES
