"""The catalogue's refusals checked on declared programs: every DR state passes, each broken declaration is caught.

A broken declaration is a real evaluation with one resource changed the way a
plausible edit of the program would change it; each must be refused with the
catalogue entry it violates, naming the resource.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from automation import aws_rules
from automation.aws_rules import check_declared
from automation.evaluate import Evaluation, evaluate_program
from tests.conftest import FEATURE_OVERRIDES, STATE_OVERRIDES, evaluate_features, evaluate_state, prod_config

INSTANCE = "aws:rds/instance:Instance"
_REMOVED = object()


@functools.cache
def variant(**overrides: str) -> Evaluation:
    return evaluate_program(prod_config(**overrides))


def changed(
    evaluation: Evaluation, type_token: str, name: str, region: str | None = None, **inputs: Any
) -> tuple[Evaluation, str]:
    """`evaluation` with one resource's inputs changed (`_REMOVED` drops one); returns it and the URN."""
    target = evaluation.one(type_token, name)
    new_inputs = {key: value for key, value in {**target.inputs, **inputs}.items() if value is not _REMOVED}
    replacement = dataclasses.replace(target, inputs=new_inputs, region=region or target.region)
    resources = [replacement if r is target else r for r in evaluation.resources]
    return Evaluation(evaluation.config, resources, evaluation.outputs), target.urn


def _key(evaluation: Evaluation, region: str) -> str:
    return evaluation.outputs["kmsKeys"][region]


def _managed_password_source() -> tuple[Evaluation, str]:
    broken, _ = changed(evaluate_state("steady"), INSTANCE, "database-primary-g1", manageMasterUserPassword=True)
    return broken, evaluate_state("steady").one(INSTANCE, "database-dr-g1").urn


def _source_without_backups() -> tuple[Evaluation, str]:
    broken, _ = changed(evaluate_state("resyncing"), INSTANCE, "database-dr-g1", backupRetentionPeriod=0)
    return broken, evaluate_state("resyncing").one(INSTANCE, "database-primary-g2").urn


def _replica_without_a_key() -> tuple[Evaluation, str]:
    return changed(evaluate_state("steady"), INSTANCE, "database-dr-g1", kmsKeyId=_REMOVED)


def _replica_with_the_source_regions_key() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    return changed(steady, INSTANCE, "database-dr-g1", kmsKeyId=_key(steady, "us-east-1"))


def _secret_replica_with_the_primary_key() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    replicas = [{"region": "us-west-2", "kmsKeyId": _key(steady, "us-east-1")}]
    return changed(steady, "aws:secretsmanager/secret:Secret", "database-master-secret", replicas=replicas)


def _s3_replica_key_of_the_source_region() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    (config,) = steady.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    rules = json.loads(json.dumps(config.inputs["rules"]))
    rules[0]["destination"]["encryptionConfiguration"]["replicaKmsKeyId"] = _key(steady, "us-east-1")
    return changed(steady, config.type, config.name, rules=rules)


def _listener_with_another_regions_certificate() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    other = steady.one("aws:lb/listener:Listener", "entry-primary-https").inputs["certificateArn"]
    return changed(steady, "aws:lb/listener:Listener", "entry-dr-https", certificateArn=other)


def _validation_through_an_undelegated_zone() -> tuple[Evaluation, str]:
    delegated = variant(zoneId="", createZone="true", zoneDelegated="true")
    undelegated = Evaluation(
        dataclasses.replace(delegated.config, zone_delegated=False), delegated.resources, delegated.outputs
    )
    # Both regions' certificates are validated through the zone: both are refused.
    validations = delegated.of_type("aws:acm/certificateValidation:CertificateValidation")
    return undelegated, " ".join(sorted(v.urn for v in validations))


def _health_check_alarm_outside_us_east_1() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    (alarm,) = [a for a in steady.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if "usw2-endpoint" in a.name]
    return changed(steady, alarm.type, alarm.name, region="us-west-2")


def _alarm_notifying_another_regions_topic() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    (alarm,) = [
        a for a in steady.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if "usw2-redis-cpu-warning" in a.name
    ]
    return changed(steady, alarm.type, alarm.name, alarmActions=[steady.outputs["alertTopics"]["us-east-1"]])


def _datastore_member_declaring_its_node_type() -> tuple[Evaluation, str]:
    type_token = "aws:elasticache/replicationGroup:ReplicationGroup"
    return changed(evaluate_state("steady"), type_token, "redis-dr", nodeType="cache.r7g.large")


def _datastore_member_declaring_multi_az() -> tuple[Evaluation, str]:
    type_token = "aws:elasticache/replicationGroup:ReplicationGroup"
    return changed(evaluate_state("steady"), type_token, "redis-dr", multiAzEnabled=True)


def _weekly_cold_storage(delete_after: int) -> Callable[[], tuple[Evaluation, str]]:
    """The weekly rule moving its RDS and S3 recovery points to cold storage after 7 days."""

    def broken() -> tuple[Evaluation, str]:
        steady = evaluate_state("steady")
        plan = steady.one("aws:backup/plan:Plan", "backup-primary")
        rules = json.loads(json.dumps(plan.inputs["rules"]))
        weekly = next(rule for rule in rules if rule["ruleName"] == "weekly")
        weekly["lifecycle"] = {"coldStorageAfter": 7, "deleteAfter": delete_after}
        return changed(steady, plan.type, plan.name, rules=rules)

    return broken


def _replica_with_a_final_snapshot() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    return changed(
        steady, INSTANCE, "database-dr-g1", skipFinalSnapshot=False, finalSnapshotIdentifier="acme-drp-usw2-pg-g1-final"
    )


def _replica_with_backups_before_postgres_14_1() -> tuple[Evaluation, str]:
    return changed(evaluate_state("steady"), INSTANCE, "database-dr-g1", engineVersion="13.15")


def _log_group_kept_45_days() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    return changed(steady, "aws:cloudwatch/logGroup:LogGroup", "eks-dr-control-plane-logs", retentionInDays=45)


def _selection_of_a_read_replica() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    selection = steady.one("aws:backup/selection:Selection", "backup-primary")
    resources = [*selection.inputs["resources"], steady.outputs["database"]["us-west-2"]["arn"]]
    return changed(steady, selection.type, selection.name, resources=resources)


def _public_endpoint(cidrs: list[str] | None) -> Callable[[], tuple[Evaluation, str]]:
    def broken() -> tuple[Evaluation, str]:
        steady = evaluate_state("steady")
        cluster = steady.one("aws:eks/cluster:Cluster", "eks-dr-cluster")
        vpc = {key: value for key, value in cluster.inputs["vpcConfig"].items() if key != "publicAccessCidrs"}
        vpc["endpointPublicAccess"] = True
        if cidrs is not None:
            vpc["publicAccessCidrs"] = cidrs
        return changed(steady, cluster.type, cluster.name, vpcConfig=vpc)

    return broken


def _transition_to_infrequent_access_too_early() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    lifecycle = steady.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "storage-primary")
    rules = json.loads(json.dumps(lifecycle.inputs["rules"]))
    rules[0]["transitions"][0]["days"] = 10
    return changed(steady, lifecycle.type, lifecycle.name, rules=rules)


def _lock_longer_than_the_daily_rule() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    broken, _ = changed(
        steady, "aws:backup/vaultLockConfiguration:VaultLockConfiguration", "backup-dr", minRetentionDays=30
    )
    # The DR plan's rules target the DR vault, and the primary plan's copies land there: both refused.
    return broken, " ".join(steady.one("aws:backup/plan:Plan", f"backup-{role}").urn for role in ("primary", "dr"))


def _lock_without_grace_time() -> tuple[Evaluation, str]:
    lock = "aws:backup/vaultLockConfiguration:VaultLockConfiguration"
    return changed(evaluate_state("steady"), lock, "backup-primary", changeableForDays=1)


def _restore_testing_plan_named_with_hyphens() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    plan = steady.one("aws:backup/restoreTestingPlan:RestoreTestingPlan", "restore-tests-dr-plan")
    # `name` is also changed()'s own parameter: rename the input directly.
    renamed = dataclasses.replace(plan, inputs={**plan.inputs, "name": "acme-drp-usw2-restore-tests"})
    resources = [renamed if r is plan else r for r in steady.resources]
    return Evaluation(steady.config, resources, steady.outputs), plan.urn


def _experiment_stopping_on_another_regions_alarm() -> tuple[Evaluation, str]:
    features = evaluate_features()
    primary_abort = features.outputs["faultInjection"]["us-east-1"]["abortAlarmArn"]
    stop = [{"source": "aws:cloudwatch:alarm", "value": primary_abort}]
    return changed(
        features, "aws:fis/experimentTemplate:ExperimentTemplate", "fault-injection-dr-s3-pause", stopConditions=stop
    )


def _alarm_spanning_more_than_a_week() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    (alarm,) = [
        a
        for a in steady.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
        if a.name.endswith("usw2-restore-test-missing")
    ]
    return changed(steady, alarm.type, alarm.name, evaluationPeriods=200)


def _node_launch_template_with_an_instance_profile() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    broken, _ = changed(
        steady, "aws:ec2/launchTemplate:LaunchTemplate", "eks-primary-nodes", iamInstanceProfile={"name": "nodes"}
    )
    groups = [
        steady.one("aws:eks/nodeGroup:NodeGroup", name)
        for name in ("eks-primary-nodes", "eks-primary-monitoring-nodes")
    ]
    return broken, " ".join(g.urn for g in groups)


def _provider_validating_credentials() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    return changed(steady, "pulumi:providers:aws", "aws-primary", skipCredentialsValidation="false")


def _provider_using_its_own_regions_sts() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    return changed(steady, "pulumi:providers:aws", "aws-dr", stsRegion=_REMOVED, skipRequestingAccountId=_REMOVED)


def _role_through_the_primary_provider() -> tuple[Evaluation, str]:
    """catalogue: pulumi-aws.provider-configure-calls-aws (a global resource bound to the primary's provider)."""
    steady = evaluate_state("steady")
    role = steady.one("aws:iam/role:Role", "backup-service")
    primary = steady.one("pulumi:providers:aws", "aws-primary").urn
    rebound = dataclasses.replace(role, provider=primary)
    return Evaluation(steady.config, [rebound if r is role else r for r in steady.resources], steady.outputs), role.urn


def _schedule_every_minute_spelt_plural() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    return changed(
        steady, "aws:scheduler/schedule:Schedule", "fence-publisher-every-minute", scheduleExpression="rate(1 minutes)"
    )


def _async_invoke_config_kept_30_seconds() -> tuple[Evaluation, str]:
    steady = evaluate_state("steady")
    return changed(
        steady,
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
        "fence-publisher-no-retries",
        maximumEventAgeInSeconds=30,
    )


# behaviour id -> a declaration that violates it (and the URN the refusal must name)
BROKEN: list[tuple[str, Callable[[], tuple[Evaluation, str]]]] = [
    ("rds.replica-source-managed-password", _managed_password_source),
    ("rds.replica-source-needs-backups", _source_without_backups),
    ("rds.replica-kms-key-in-own-region", _replica_without_a_key),
    ("kms.key-is-regional", _replica_with_the_source_regions_key),
    ("kms.key-is-regional", _secret_replica_with_the_primary_key),
    ("kms.key-is-regional", _s3_replica_key_of_the_source_region),
    ("acm.certificate-is-regional", _listener_with_another_regions_certificate),
    ("acm.dns-validation-needs-delegated-zone", _validation_through_an_undelegated_zone),
    ("cloudwatch.route53-metrics-in-us-east-1", _health_check_alarm_outside_us_east_1),
    ("cloudwatch.alarm-actions-in-own-region", _alarm_notifying_another_regions_topic),
    ("elasticache.global-datastore-member-inherits", _datastore_member_declaring_its_node_type),
    ("elasticache.global-datastore-member-inherits", _datastore_member_declaring_multi_az),
    ("backup.cold-storage-minimum-90-days", _weekly_cold_storage(50)),
    ("backup.cold-storage-not-for-rds-or-s3", _weekly_cold_storage(97)),
    ("rds.delete-replica-refuses-final-snapshot", _replica_with_a_final_snapshot),
    ("rds.postgres-replica-automated-backups", _replica_with_backups_before_postgres_14_1),
    ("cloudwatch.logs-retention-values", _log_group_kept_45_days),
    ("backup.no-read-replica", _selection_of_a_read_replica),
    ("eks.public-endpoint-open-by-default", _public_endpoint(None)),
    ("eks.public-endpoint-open-by-default", _public_endpoint(["0.0.0.0/0"])),
    ("s3.lifecycle-ia-minimum-30-days", _transition_to_infrequent_access_too_early),
    ("backup.vault-lock-retention-range", _lock_longer_than_the_daily_rule),
    ("backup.vault-lock-compliance-mode", _lock_without_grace_time),
    ("backup.restore-testing-plan-limits", _restore_testing_plan_named_with_hyphens),
    ("fis.stop-condition-alarm", _experiment_stopping_on_another_regions_alarm),
    ("cloudwatch.alarm-evaluation-range", _alarm_spanning_more_than_a_week),
    ("eks.node-group-launch-template-rules", _node_launch_template_with_an_instance_profile),
    ("pulumi-aws.provider-configure-calls-aws", _provider_validating_credentials),
    ("pulumi-aws.provider-configure-calls-aws", _provider_using_its_own_regions_sts),
    ("pulumi-aws.provider-configure-calls-aws", _role_through_the_primary_provider),
    ("scheduler.rate-one-minute-at-most-once-a-minute", _schedule_every_minute_spelt_plural),
    ("lambda.async-invoke-retries", _async_invoke_config_kept_30_seconds),
]


@pytest.mark.parametrize("state", sorted(STATE_OVERRIDES))
def test_every_dr_state_declares_nothing_aws_refuses(state):
    assert check_declared(evaluate_state(state)) == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"zoneId": "", "createZone": "true"},
        {"zoneId": "", "createZone": "true", "zoneDelegated": "true"},
        {"zoneId": ""},
        {"eksPublicEndpoint": "true", "eksPublicAccessCidrs": '["203.0.113.10/32"]'},
        {"primaryRegion": "eu-west-1", "activeRegion": "eu-west-1", "drRegion": "eu-central-1"},
    ],
    ids=["zone-awaiting-delegation", "zone-delegated", "zone-by-name", "public-endpoint", "away-from-us-east-1"],
)
def test_every_supported_setup_declares_nothing_aws_refuses(overrides):
    assert check_declared(variant(**overrides)) == []


def test_every_optional_feature_declares_nothing_aws_refuses():
    """Fault injection and the off-account backup copy (FEATURE_OVERRIDES)."""
    assert FEATURE_OVERRIDES and check_declared(evaluate_features()) == []


@pytest.mark.parametrize(("behaviour", "broken"), BROKEN, ids=lambda value: getattr(value, "__name__", value))
def test_each_rule_refuses_its_violation_citing_the_entry(behaviour, broken):
    evaluation, urns = broken()
    refusals = check_declared(evaluation)
    assert behaviour in {r.behaviour for r in refusals}, [str(r) for r in refusals]
    for refusal in refusals:
        # Only what is broken is refused, in AWS's terms, with the source.
        assert refusal.urn in urns.split()
        assert str(refusal).startswith(f"{refusal.urn}: ")
        assert f"[catalogue {refusal.behaviour}; source: " in str(refusal)


def test_every_behaviour_the_rules_refuse_has_a_broken_declaration():
    source = Path(aws_rules.__file__).read_text()
    refused = set(re.findall(r'"([a-z0-9-]+\.[a-z0-9]+(?:-[a-z0-9]+)+)"', source))
    assert refused == {behaviour for behaviour, _ in BROKEN}
