"""CloudWatch alarms and their SNS topics, per DR state, under the recording mocks."""

from __future__ import annotations

import functools
import json

import pytest
from pulumi.runtime.rpc import is_rpc_secret, unwrap_rpc_secret

from automation.evaluate import ACCOUNT_ID, DeclaredResource, Evaluation, evaluate_program
from components.alarms import (
    CRITICAL,
    MISSING_IS_BREACHING,
    MISSING_IS_FINE,
    MISSING_KEEPS_STATE,
    WARNING,
    regional_alarms,
)
from components.alert_rules import dr_rules
from components.config import parse_config
from components.naming import replication_rule_id
from components.traffic import fence_alarm_physical_name, fence_alarm_settings
from tests.conftest import STATE_OVERRIDES, STATES, evaluate_state, prod_config

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"

# Alarm names per region in each state (prod config: prefix acme-drp, us-east-1 / us-west-2).
ALWAYS = {
    "us-east-1": {
        "acme-drp-use1-redis-cpu-warning",
        "acme-drp-use1-redis-cpu-critical",
        "acme-drp-use1-vault-backup-jobs-failed",
        "acme-drp-use1-vault-cross-region-copy-jobs-failed",
        "acme-drp-use1-monitoring-heartbeat-missing",
        "acme-drp-use1-restore-test-failed",
        "acme-drp-use1-restore-test-missing",
        # Route53 health-check metrics exist in us-east-1 only.
        "acme-drp-use1-endpoint-unhealthy",
        "acme-drp-usw2-endpoint-unhealthy",
    },
    "us-west-2": {
        "acme-drp-usw2-redis-cpu-warning",
        "acme-drp-usw2-redis-cpu-critical",
        # The traffic fence's alarm (components/traffic.py DnsFailover): not an alert, Route53 reads it; its name
        # ends in a digest of the settings Route53 copies.
        fence_alarm_physical_name("acme-drp-usw2-traffic-fence", fence_alarm_settings("app.platform.example.com")),
        # Its publisher stopped or failing (components/fence_publisher.py).
        "acme-drp-usw2-fence-publisher-silent",
        "acme-drp-usw2-fence-publisher-errors",
        "acme-drp-usw2-vault-backup-jobs-failed",
        "acme-drp-usw2-vault-cross-region-copy-jobs-failed",
        "acme-drp-usw2-monitoring-heartbeat-missing",
        "acme-drp-usw2-restore-test-failed",
        "acme-drp-usw2-restore-test-missing",
    },
}


def database_alarms(identifier: str) -> set[str]:
    return {f"{identifier}-cpu-warning", f"{identifier}-cpu-critical", f"{identifier}-free-storage-low"}


def lag_alarms(identifier: str, cache: str) -> set[str]:
    return {
        f"{identifier}-replica-lag-warning",
        f"{identifier}-replica-lag-critical",
        f"{cache}-global-replication-lag-warning",
        f"{cache}-global-replication-lag-critical",
    }


def replication_alarms(bucket: str) -> set[str]:
    return {f"{bucket}-replication-latency-over-rtc", f"{bucket}-replication-failed"}


EXPECTED = {
    "steady": {
        "us-east-1": database_alarms("acme-drp-use1-pg-g1") | replication_alarms("acme-drp-use1-data"),
        "us-west-2": database_alarms("acme-drp-usw2-pg-g1") | lag_alarms("acme-drp-usw2-pg-g1", "acme-drp-usw2-redis"),
    },
    # The failed primary keeps its steady alarms; the promoted DR has no replica to watch.
    "failed-over": {
        "us-east-1": database_alarms("acme-drp-use1-pg-g1") | replication_alarms("acme-drp-use1-data"),
        "us-west-2": database_alarms("acme-drp-usw2-pg-g1"),
    },
    "resyncing": {
        "us-east-1": database_alarms("acme-drp-use1-pg-g2") | lag_alarms("acme-drp-use1-pg-g2", "acme-drp-use1-redis"),
        "us-west-2": database_alarms("acme-drp-usw2-pg-g1") | replication_alarms("acme-drp-usw2-data"),
    },
    "steady-after-failback": {
        "us-east-1": database_alarms("acme-drp-use1-pg-g2") | replication_alarms("acme-drp-use1-data"),
        "us-west-2": database_alarms("acme-drp-usw2-pg-g2") | lag_alarms("acme-drp-usw2-pg-g2", "acme-drp-usw2-redis"),
    },
}


@functools.cache
def retuned() -> Evaluation:
    """Different objectives, storage and notification endpoints."""
    return evaluate_program(
        prod_config(
            rpoSeconds="600",
            replicaLagWarningSeconds="240",
            dbAllocatedStorageGb="200",
            # The prod address moves to second place: its subscription must stay the same resource.
            notificationEmails=json.dumps(["a@example.com", "sre-oncall@example.com"]),
            notificationHttpsEndpoints=json.dumps(["https://events.example.com/hook"]),
        )
    )


@functools.cache
def away_from_us_east_1() -> Evaluation:
    return evaluate_program(prod_config(primaryRegion="eu-west-1", activeRegion="eu-west-1", drRegion="eu-central-1"))


def alarms_by_name(evaluation: Evaluation) -> dict[str, dict]:
    return {a.inputs["name"]: dict(a.inputs) for a in evaluation.of_type(ALARM)}


def alarm_names_by_region(evaluation: Evaluation) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for alarm in evaluation.of_type(ALARM):
        names.setdefault(alarm.region, set()).add(alarm.inputs["name"])
    return names


@pytest.mark.parametrize("state", sorted(EXPECTED))
def test_every_alarm_exists_in_the_right_region(state):
    expected = {region: ALWAYS[region] | EXPECTED[state][region] for region in ALWAYS}
    assert alarm_names_by_region(evaluate_state(state)) == expected


def test_alarms_notify_their_own_regions_topic_on_alarm_and_ok(state_eval):
    topics = state_eval.outputs["alertTopics"]
    assert set(topics) == set(state_eval.regions())
    # The traffic fence's alarm is no alert: Route53 reads it (components/traffic.py DnsFailover).
    fence = state_eval.outputs["dns"]["fence"]["alarmName"]
    alarms = [alarm for alarm in state_eval.of_type(ALARM) if alarm.inputs["name"] != fence]
    assert alarms
    for alarm in alarms:
        assert alarm.inputs["alarmActions"] == [topics[alarm.region]], alarm.name
        assert alarm.inputs["okActions"] == [topics[alarm.region]], alarm.name
        assert topics[alarm.region].startswith(f"arn:aws:sns:{alarm.region}:")


@pytest.mark.parametrize(
    ("state", "identifier", "region"),
    [
        ("steady", "acme-drp-usw2-pg-g1", "us-west-2"),
        ("resyncing", "acme-drp-use1-pg-g2", "us-east-1"),
        ("steady-after-failback", "acme-drp-usw2-pg-g2", "us-west-2"),
    ],
)
def test_replica_lag_alarms_watch_the_current_replica(state, identifier, region):
    evaluation = evaluate_state(state)
    lag = [a for a in evaluation.of_type(ALARM) if a.inputs.get("metricName") == "ReplicaLag"]
    assert {a.region for a in lag} == {region}
    assert {a.inputs["dimensions"]["DBInstanceIdentifier"] for a in lag} == {identifier}
    replica = evaluation.outputs["database"][region]
    assert replica["identifier"] == identifier and replica["role"] == "replica"
    thresholds = {a.inputs["tags"]["severity"]: a.inputs["threshold"] for a in lag}
    assert thresholds == {WARNING: 120, CRITICAL: 300}
    # A replica being created reports nothing for hours: no data keeps the alarm's state (INSUFFICIENT_DATA
    # at first) instead of paging; ReplicaLagNotReported speaks for a running replica without lag.
    assert {a.inputs["treatMissingData"] for a in lag} == {MISSING_KEEPS_STATE}


def test_lag_alarms_and_rules_share_thresholds_and_durations(steady):
    """The CloudWatch alarms and the Prometheus rules page on the same lag for the same time."""
    replica_rules = {r.alert: r for r in dr_rules(steady.config, "dr").rules}
    lag = [a for a in steady.of_type(ALARM) if a.inputs.get("metricName") == "ReplicaLag"]
    alarms = {a.inputs["tags"]["severity"]: (a.inputs["threshold"], a.inputs["evaluationPeriods"]) for a in lag}
    rules = {
        rule.severity: (float(rule.expr.rsplit("> ", 1)[1]), int(rule.duration.removesuffix("m")))
        for rule in (replica_rules["ReplicaLagApproachingRpo"], replica_rules["ReplicaLagAboveRpo"])
    }
    assert alarms == rules == {WARNING: (120, 2), CRITICAL: (300, 1)}
    assert all(a.inputs["period"] == 60 for a in lag)


def test_lag_alarm_descriptions_name_the_heartbeat(steady):
    """catalogue: rds.idle-source-replays-every-few-minutes (a stopped heartbeat reads as lag on a quiet database)."""
    lag = [a for a in steady.of_type(ALARM) if a.inputs.get("metricName") == "ReplicaLag"]
    assert all("ReplicationHeartbeatStale" in a.inputs["alarmDescription"] for a in lag)


def metric_names(alarm: DeclaredResource) -> set[str]:
    """The metrics an alarm reads, whether plainly, through metric math or through a query (its label)."""
    queries = alarm.inputs.get("metricQueries", [])
    named = {q["metric"]["metricName"] if "metric" in q else q.get("label") for q in queries} - {None}
    return {name for name in named if name} or {alarm.inputs["metricName"]}


def test_no_lag_alarm_while_failed_over(failed_over):
    metrics = set().union(*(metric_names(a) for a in failed_over.of_type(ALARM)))
    assert {"CPUUtilization", "EngineCPUUtilization"} <= metrics
    assert not metrics & {"ReplicaLag", "GlobalDatastoreReplicationLag"}


def test_primary_region_alarms_stay_as_in_steady_while_failed_over(steady, failed_over):
    def primary_alerting(evaluation: Evaluation) -> dict[str, dict]:
        return {
            r.urn: dict(r.inputs)
            for r in evaluation.resources
            if r.region == "us-east-1" and r.type in (ALARM, TOPIC, SUBSCRIPTION)
        }

    before = primary_alerting(steady)
    assert len(before) > 10
    assert primary_alerting(failed_over) == before


def test_thresholds_come_from_config(steady):
    alarms = alarms_by_name(retuned())
    assert alarms["acme-drp-usw2-pg-g1-replica-lag-warning"]["threshold"] == 240
    assert alarms["acme-drp-usw2-pg-g1-replica-lag-critical"]["threshold"] == 600
    assert alarms["acme-drp-usw2-redis-global-replication-lag-critical"]["threshold"] == 600
    # 10 % of the allocated storage, in bytes.
    assert alarms["acme-drp-use1-pg-g1-free-storage-low"]["threshold"] == 20 * 1024**3
    assert alarms_by_name(steady)["acme-drp-use1-pg-g1-free-storage-low"]["threshold"] == 10 * 1024**3


def test_cpu_alarms_follow_the_runbook_thresholds(steady):
    alarms = alarms_by_name(steady)
    for subject in ("acme-drp-use1-pg-g1", "acme-drp-usw2-pg-g1", "acme-drp-use1-redis", "acme-drp-usw2-redis"):
        assert alarms[f"{subject}-cpu-warning"]["threshold"] == 80
        assert alarms[f"{subject}-cpu-critical"]["threshold"] == 90
        assert alarms[f"{subject}-cpu-critical"]["evaluationPeriods"] == 5
    assert alarms["acme-drp-use1-pg-g1-cpu-critical"]["metricName"] == "CPUUtilization"


def test_cache_alarms_watch_every_node_of_the_group(steady):
    alarms = alarms_by_name(steady)
    queries = alarms["acme-drp-usw2-redis-global-replication-lag-critical"]["metricQueries"]
    nodes = [q["metric"]["dimensions"]["CacheClusterId"] for q in queries if "metric" in q]
    assert nodes == ["acme-drp-usw2-redis-001", "acme-drp-usw2-redis-002"]
    (expression,) = [q for q in queries if q.get("returnData")]
    assert expression["expression"] == "MAX([m0, m1])"
    assert {q["metric"]["metricName"] for q in queries if "metric" in q} == {"GlobalDatastoreReplicationLag"}


def test_s3_replication_alarms_name_the_rule_of_the_source(steady, resyncing):
    for evaluation, source_role, source_region in ((steady, "primary", "us-east-1"), (resyncing, "dr", "us-west-2")):
        bucket = evaluation.outputs["buckets"][source_region]["name"]
        alarms = alarms_by_name(evaluation)
        latency = alarms[f"{bucket}-replication-latency-over-rtc"]
        destination = evaluation.outputs["replication"]["destination"]
        assert evaluation.outputs["replication"]["source"] == source_region
        assert latency["dimensions"] == {
            "SourceBucket": bucket,
            "DestinationBucket": evaluation.outputs["buckets"][destination]["name"],
            "RuleId": replication_rule_id(evaluation.config, source_role),
        }
        assert latency["threshold"] == 900
        failed = alarms[f"{bucket}-replication-failed"]
        assert (failed["metricName"], failed["statistic"]) == ("OperationsFailedReplication", "Sum")
        assert failed["threshold"] == 0


def test_replication_rule_id_matches_the_declared_rule(steady):
    (config,) = steady.of_type("aws:s3/bucketReplicationConfig:BucketReplicationConfig")
    assert [rule["id"] for rule in config.inputs["rules"]] == [replication_rule_id(steady.config, "primary")]


def test_backup_alarms_sum_every_dimension_set_that_names_each_regions_vault(steady):
    """catalogue: cloudwatch.metrics-insights-alarm-spans-dimension-sets

    A plain metric alarm on {BackupVaultName} alone never sees data if AWS Backup publishes the
    counts only with ResourceType as well (catalogue: backup.job-metric-dimensions).
    """
    alarms = alarms_by_name(steady)
    for vault in (steady.outputs["backupVaults"][region]["name"] for region in steady.regions()):
        for metric, name in (
            ("NumberOfBackupJobsFailed", f"{vault}-backup-jobs-failed"),
            ("NumberOfCopyJobsFailed", f"{vault}-cross-region-copy-jobs-failed"),
        ):
            assert "metricName" not in alarms[name] and "dimensions" not in alarms[name]
            (query,) = alarms[name]["metricQueries"]
            assert query["expression"] == f"SELECT SUM({metric}) FROM \"AWS/Backup\" WHERE BackupVaultName = '{vault}'"
            assert (query["period"], query["returnData"]) == (3600, True)
            assert (alarms[name]["comparisonOperator"], alarms[name]["threshold"]) == ("GreaterThanThreshold", 0)
            assert alarms[name]["treatMissingData"] == MISSING_IS_FINE


@pytest.mark.parametrize("state", STATES)
def test_a_silent_monitoring_stack_pages_from_outside_the_cluster(state):
    """The dead man's switch (catalogue: sns.topic-metrics-every-five-minutes)."""
    evaluation = evaluate_state(state)
    alarms = {a.inputs["name"]: a for a in evaluation.of_type(ALARM)}
    topics = {t.inputs["name"]: t for t in evaluation.of_type(TOPIC)}
    for region, code in (("us-east-1", "use1"), ("us-west-2", "usw2")):
        alarm = alarms[f"acme-drp-{code}-monitoring-heartbeat-missing"]
        heartbeat = topics[f"acme-drp-{code}-heartbeat"]
        assert alarm.region == heartbeat.region == region
        assert heartbeat.inputs["kmsMasterKeyId"] == evaluation.outputs["kmsKeys"][region]
        inputs = alarm.inputs
        assert (inputs["namespace"], inputs["metricName"], inputs["statistic"]) == (
            "AWS/SNS",
            "NumberOfMessagesPublished",
            "Sum",
        )
        assert inputs["dimensions"] == {"TopicName": f"acme-drp-{code}-heartbeat"}
        assert (inputs["comparisonOperator"], inputs["threshold"]) == ("LessThanThreshold", 1)
        assert inputs["period"] * inputs["evaluationPeriods"] == 900
        # No message, no datapoint: silence is the failure.
        assert inputs["treatMissingData"] == MISSING_IS_BREACHING
        # It pages through the region's alert topic, which has the subscribers.
        assert inputs["alarmActions"] == [evaluation.outputs["alertTopics"][region]]
    assert not evaluation.of_type(SUBSCRIPTION) or all(
        "heartbeat" not in s.inputs["topic"] for s in evaluation.of_type(SUBSCRIPTION)
    )


def test_health_check_alarms_watch_both_endpoints_from_us_east_1(state_eval):
    dns = state_eval.outputs["dns"]
    health = [a for a in state_eval.of_type(ALARM) if a.inputs.get("namespace") == "AWS/Route53"]
    assert {a.region for a in health} == {"us-east-1"}
    assert sorted(a.inputs["dimensions"]["HealthCheckId"] for a in health) == sorted(dns["healthChecks"].values())
    for alarm in health:
        assert alarm.inputs["metricName"] == "HealthCheckStatus"
        assert (alarm.inputs["comparisonOperator"], alarm.inputs["threshold"]) == ("LessThanThreshold", 1)


def test_topics_are_encrypted_with_their_regions_key(state_eval):
    keys = state_eval.outputs["kmsKeys"]
    topics = state_eval.of_type(TOPIC)
    # An alert topic and a heartbeat topic per region.
    assert sorted(t.region for t in topics) == sorted([*state_eval.regions()] * 2)
    for topic in topics:
        assert topic.inputs["kmsMasterKeyId"] == keys[topic.region]


def test_key_policy_lets_cloudwatch_publish_to_encrypted_topics_and_keeps_root_administration(steady):
    """catalogue: sns.cloudwatch-publishes-to-encrypted-topic"""
    for key in steady.of_type("aws:kms/key:Key"):
        statements = {s["Sid"]: s for s in json.loads(key.inputs["policy"])["Statement"]}
        root = statements["AccountAdministersThroughIam"]
        assert (root["Principal"], root["Action"]) == ({"AWS": ACCOUNT_ID}, "kms:*")
        cloudwatch = statements["CloudWatchAlarmsPublishToEncryptedTopics"]
        assert cloudwatch["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
        assert set(cloudwatch["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
        # catalogue: sns.cloudwatch-kms-request-source-keys (the documented form: no condition that might not match)
        assert "Condition" not in cloudwatch


def test_no_service_but_cloudwatch_may_use_the_keys_to_publish(steady):
    """EventBridge had a grant no rule used: gone (issue 13.11)."""
    for key in steady.of_type("aws:kms/key:Key"):
        principals = {json.dumps(s["Principal"]) for s in json.loads(key.inputs["policy"])["Statement"]}
        assert principals == {json.dumps({"AWS": ACCOUNT_ID}), json.dumps({"Service": "cloudwatch.amazonaws.com"})}


def test_endpoints_set_as_secrets_reach_the_subscriptions_only_as_secrets():
    """`pulumi config set --secret`: the value is kept encrypted in state, and so are the subscription's outputs.

    catalogue: pulumi-cli.language-host-passes-secret-keys
    """
    evaluation = evaluate_program(
        prod_config(notificationHttpsEndpoints=json.dumps(["https://hooks.example.com/T0/B0/s3cr3t"])),
        secret_keys=["notificationHttpsEndpoints"],
    )
    https = [s for s in evaluation.of_type(SUBSCRIPTION) if s.inputs["protocol"] == "https"]
    emails = [s for s in evaluation.of_type(SUBSCRIPTION) if s.inputs["protocol"] == "email"]
    assert https and emails
    for subscription in https:
        assert is_rpc_secret(subscription.inputs["endpoint"]), subscription.inputs["endpoint"]
        assert unwrap_rpc_secret(subscription.inputs["endpoint"]) == "https://hooks.example.com/T0/B0/s3cr3t"
        assert "s3cr3t" not in subscription.urn
    # Emails were not set with --secret: plain, as before.
    assert all(s.inputs["endpoint"] == "sre-oncall@example.com" for s in emails)


def test_subscriptions_come_from_config(steady):
    def subscriptions(evaluation: Evaluation) -> set[tuple[str, str, str]]:
        return {(s.region, s.inputs["protocol"], s.inputs["endpoint"]) for s in evaluation.of_type(SUBSCRIPTION)}

    assert subscriptions(steady) == {(r, "email", "sre-oncall@example.com") for r in steady.regions()}
    assert subscriptions(retuned()) == {
        (region, protocol, endpoint)
        for region in retuned().regions()
        for protocol, endpoint in (
            ("email", "a@example.com"),
            ("email", "sre-oncall@example.com"),
            ("https", "https://events.example.com/hook"),
        )
    }


def test_subscriptions_are_named_by_endpoint_so_reordering_keeps_them(steady):
    kept = {s.urn for s in steady.of_type(SUBSCRIPTION)}
    assert kept <= {s.urn for s in retuned().of_type(SUBSCRIPTION)}


def test_without_a_region_in_us_east_1_health_check_alarms_get_their_own_topic_there():
    evaluation = away_from_us_east_1()
    topics = evaluation.outputs["alertTopics"]
    assert set(topics) == {"eu-west-1", "eu-central-1", "us-east-1"}
    health = [a for a in evaluation.of_type(ALARM) if a.inputs.get("namespace") == "AWS/Route53"]
    assert len(health) == 2
    assert {a.region for a in health} == {"us-east-1"}
    assert {a.inputs["alarmActions"][0] for a in health} == {topics["us-east-1"]}
    (topic,) = evaluation.of_type(TOPIC, "us-east-1")
    (key,) = evaluation.of_type("aws:kms/key:Key", "us-east-1")
    assert topic.inputs["kmsMasterKeyId"].startswith("arn:aws:kms:us-east-1:")
    assert key.protect
    assert {a.region for a in evaluation.of_type(ALARM)} == {"eu-west-1", "eu-central-1", "us-east-1"}


@pytest.mark.parametrize("role", ["primary", "dr"])
def test_restore_tests_page_on_a_failure_and_on_a_day_and_a_quarter_without_a_pass(role):
    """catalogue: cloudwatch.alarm-evaluation-range"""
    cfg = parse_config(prod_config())
    code = "use1" if role == "primary" else "usw2"
    specs = {spec.name: spec for spec in regional_alarms(cfg, role)}
    failed, missing = specs[f"acme-drp-{code}-restore-test-failed"], specs[f"acme-drp-{code}-restore-test-missing"]
    plan = {"RestoreTestingPlan": f"acme_drp_{code}_restore_tests"}
    assert failed.dimension_sets == missing.dimension_sets == (plan,)
    assert (failed.metric, failed.comparison, failed.threshold) == ("RestoreTestsFailed", "GreaterThanThreshold", 0)
    assert (missing.metric, missing.comparison, missing.threshold) == ("RestoreTestsPassed", "LessThanThreshold", 1)
    # Every one of 30 hourly periods without a pass: a daily test that did not happen, whatever its hour.
    assert missing.datapoints_to_alarm == missing.evaluation_periods == 30
    assert missing.period_seconds * missing.evaluation_periods > 24 * 3600
    # CloudWatch evaluates at most 7 days, and at most 1 day below hourly periods.
    for spec in regional_alarms(cfg, role):
        assert spec.period_seconds * spec.evaluation_periods <= (7 if spec.period_seconds >= 3600 else 1) * 86400


@pytest.mark.parametrize("state", STATES)
def test_missing_data_treatment_matches_what_silence_means(state):
    cfg = parse_config(prod_config(**STATE_OVERRIDES[state]))
    for role in ("primary", "dr"):
        for spec in regional_alarms(cfg, role):
            if spec.metric in ("NumberOfMessagesPublished", "RestoreTestsPassed"):
                assert spec.treat_missing_data == MISSING_IS_BREACHING
            elif spec.namespace in ("AWS/S3", "AWS/Backup", "DrPlatform/RestoreTesting"):
                assert spec.treat_missing_data == MISSING_IS_FINE
            else:
                assert spec.treat_missing_data == MISSING_KEEPS_STATE, spec.name
