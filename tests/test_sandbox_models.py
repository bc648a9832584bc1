"""The sandbox's models follow AWS and the engines, not our beliefs: each test names the behaviour it enforces.

Most tests drive one model directly (fast, no moto); the last ones drive the
hooks through a provisioned sandbox, once, to show what a runbook would read.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from automation.aws import actions, readiness
from automation.sandbox import MotoSandboxServer, Sandbox
from automation.sandbox.compute import ComputeModel, Scaling
from automation.sandbox.lineage import Lineage, Write
from automation.sandbox.metrics import Publisher, Series
from automation.sandbox.objects import ObjectReplication
from automation.sandbox.traffic import ELB_503, OK, ROUTE53_SEES_ALARM_SECONDS, RecordSet, Timeline, TrafficModel
from automation.timings import Op, latency
from tests.aws_support import CFG
from tests.conftest import prod_config

T0 = datetime(2025, 1, 1, tzinfo=UTC)
PRIMARY, DR = "us-east-1", "us-west-2"


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# --- PostgreSQL replication and sessions (automation.sandbox.lineage) -----------------------------


def lineage() -> Lineage:
    database = Lineage(5, epoch=T0, heartbeat_seconds=300)
    database.attach("replica", "writer", T0)
    return database


def test_replica_lag_is_the_time_since_the_last_replayed_commit_and_grows_when_the_source_is_gone() -> None:
    """catalogue: rds.postgres-replica-lag-is-time-since-last-replay"""
    database = lineage()
    database.write("writer", [Write("a", at(100))])
    assert database.replica_lag("replica", at(106)) == 6  # replayed `a` 5 s after it was committed
    assert database.replica_lag("replica", at(160)) == 60  # nothing more to replay: it grows
    database.node_down("writer", at(200))
    assert database.replica_lag("replica", at(900)) == 800  # an hour into an outage it keeps growing


def test_an_idle_source_is_replayed_every_few_minutes_so_lag_saws_up_to_about_300_seconds() -> None:
    """catalogue: rds.idle-source-replays-every-few-minutes"""
    database = lineage()
    lags = [database.replica_lag("replica", at(t)) for t in range(310, 1210, 60)]
    assert max(lags) > 240 and min(lags) < 60  # never 0, never beyond one cycle
    assert all(lag <= 300 + 5 for lag in lags)


def test_the_source_slot_is_empty_once_the_replica_received_everything() -> None:
    """catalogue: rds.oldest-replication-slot-lag"""
    database = lineage()
    database.write("writer", [Write("a", at(100)), Write("b", at(101))])
    assert database.slot_lag_bytes("writer", at(102)) == 2 * 1024  # still in flight
    assert database.slot_lag_bytes("writer", at(110)) == 0  # received: a promotion would have both
    assert {w.key for w in database.visible("replica", at(110))} == {"a", "b"}
    assert database.slot_lag_bytes("replica", at(110)) is None  # a replica has no replica of its own


def test_an_idle_fenced_source_slot_reads_zero_between_its_own_heartbeats() -> None:
    """catalogue: rds.fenced-source-slot-lag-reads-zero"""
    database = lineage()
    readings = [database.slot_lag_bytes("writer", at(t)) for t in range(0, 1200, 20)]
    assert any(r for r in readings)  # RDS's own WAL is in flight for a few seconds every cycle
    assert sum(1 for r in readings if r == 0) > 0.9 * len(readings)  # and received the rest of the time


def test_a_read_only_default_lets_open_transactions_and_overriding_sessions_write_until_a_reboot() -> None:
    """catalogue: rds.read-only-parameter-is-a-session-default, rds.reboot-ends-every-session"""
    database = lineage()
    database.read_only("writer", at(100))  # the parameter change is in sync from here
    plain, opened_before, overriding = (
        Write("new", at(110)),
        Write("open", at(110), began_at=at(80)),
        Write("override", at(110), overrides_read_only=True),
    )
    assert "read-only" in (database.refusal("writer", plain) or "")
    assert database.refusal("writer", opened_before) is None  # a transaction opened before keeps writing
    assert database.refusal("writer", overriding) is None  # a session that set read-write keeps writing
    database.restart("writer", at(120), at(180))
    assert "restarting" in (database.refusal("writer", Write("during", at(150))) or "")
    after = [Write("x", at(200), began_at=at(80)), Write("y", at(200), overrides_read_only=True)]
    assert database.write("writer", after) == []  # every session ended: the fence holds


def test_a_rejoining_primary_does_a_full_sync_and_its_unreplicated_keys_are_gone() -> None:
    """catalogue: elasticache.rejoining-primary-full-sync"""
    cache = Lineage(1, epoch=T0)
    cache.attach("dr", "primary", T0)
    cache.write("primary", [Write("kept", at(10)), Write("late", at(100))])
    cache.detach("dr", at(100.5))  # failover: `late` had not reached it
    cache.attach("primary", "dr", at(200))  # the demoted primary rejoins
    assert {w.key for w in cache.visible("primary", at(300))} == {"kept"}
    assert {w.key for w in cache.all_writes()} == {"kept", "late"}  # acknowledged once, lost since


# --- EKS (automation.sandbox.compute) ------------------------------------------------------------


def test_a_node_group_is_updating_then_active_and_its_nodes_are_ready_only_after_the_scale_up() -> None:
    """catalogue: eks.node-group-update-is-asynchronous, eks.active-is-not-ready"""
    compute = ComputeModel(CFG)
    compute.created(DR, "eks", "nodes", "asg", Scaling(1, 1, 9), T0)
    assert compute.update(DR, "eks", "nodes", Scaling(3, 3, 9), at(0)) is None
    group = compute.group(DR, "eks", "nodes")
    assert group is not None and group.status_at(at(1)) == "UPDATING"
    assert "UPDATING" in (compute.update(DR, "eks", "nodes", Scaling(3, 3, 9), at(2)) or "")
    assert group.status_at(at(latency(Op.NODE_GROUP_UPDATE))) == "ACTIVE"
    assert compute.ready_nodes(DR, at(latency(Op.NODE_GROUP_UPDATE))) == 1  # ACTIVE, not yet capacity
    assert compute.ready_nodes(DR, at(latency(Op.NODE_GROUP_SCALE_UP, CFG))) == 3
    # The same size again is no new scale-up: its duration is paid once.
    assert compute.update(DR, "eks", "nodes", Scaling(3, 3, 9), at(400)) is None and len(group.updates) == 2


# --- S3 (automation.sandbox.objects) -----------------------------------------------------------------


def replication(kms: bool = True, **rule: Any) -> tuple[ObjectReplication, list[tuple[str, str]]]:
    copies: list[tuple[str, str]] = []
    objects = ObjectReplication(
        put_object=lambda bucket, key, source, written: copies.append((bucket, key)),
        delete_object=lambda bucket, key: copies.append((bucket, f"deleted:{key}")),
        region_of_bucket=lambda bucket: {"src": PRIMARY, "dst": DR}.get(bucket),
        region_down=lambda region, when: False,
    )
    objects.encrypt_with_kms("src", kms)
    raw = {
        "ID": "all",
        "Status": "Enabled",
        "Filter": {"Prefix": ""},
        "Destination": {
            "Bucket": "arn:aws:s3:::dst",
            "ReplicationTime": {"Status": "Enabled", "Time": {"Minutes": 15}},
            "Metrics": {"Status": "Enabled"},
            "EncryptionConfiguration": {"ReplicaKmsKeyID": "arn:aws:kms:us-west-2:1:key/k"},
        },
        "SourceSelectionCriteria": {"SseKmsEncryptedObjects": {"Status": "Enabled"}},
        "DeleteMarkerReplication": {"Status": "Enabled"},
        **rule,
    }
    objects.configure("src", [raw], at(100))
    return objects, copies


def test_live_replication_skips_objects_written_before_the_rule_and_a_batch_job_copies_them() -> None:
    """catalogue: s3.live-replication-skips-existing-objects, s3.batch-replication-job"""
    objects, copies = replication()
    objects.written("src", "uploads/old", at(50))
    objects.written("src", "uploads/new", at(150))
    assert objects.replicate(at(200)) == 1 and copies == [("dst", "uploads/new")]
    job = objects.create_job("j", "token", "failback", "src", "role", None, at(300))
    assert [o.key for o in job.selected] == ["uploads/old"] and job.status_at(at(301)) == "New"
    assert objects.create_job("j2", "token", "failback", "src", "role", None, at(301)) is job  # same token
    objects.replicate(job.finished_at)
    assert ("dst", "uploads/old") in copies and job.status_at(job.finished_at) == "Complete"
    refused = objects.create_job("j3", "other", "failback", "src", "role", "the role is not trusted", at(400))
    assert refused.status_at(refused.finished_at) == "Failed"


def test_a_batch_job_completes_with_failed_tasks_and_its_token_keeps_answering_the_same_job() -> None:
    """catalogue: s3.batch-job-complete-is-not-success, s3.batch-job-token-is-idempotent"""
    objects, copies = replication()
    objects.written("src", "uploads/readable", at(50))
    objects.written("src", "uploads/unreadable", at(60))
    objects.batch_task_failures.add("uploads/unreadable")
    job = objects.create_job("j", "token", "failback", "src", "role", None, at(300))
    objects.replicate(job.finished_at)
    assert job.status_at(job.finished_at) == "Complete"
    assert job.progress(job.finished_at) == {
        "TotalNumberOfTasks": 2,
        "NumberOfTasksSucceeded": 1,
        "NumberOfTasksFailed": 1,
    }
    assert ("dst", "uploads/unreadable") not in copies
    # The same token answers the finished job again; a new token selects what is still FAILED.
    assert objects.create_job("j2", "token", "failback", "src", "role", None, at(900)) is job
    objects.batch_task_failures.clear()
    retry = objects.create_job("j3", "token-2", "failback", "src", "role", None, at(900))
    assert [o.key for o in retry.selected] == ["uploads/unreadable"]
    objects.replicate(retry.finished_at)
    assert retry.progress(retry.finished_at)["NumberOfTasksFailed"] == 0


def test_sse_kms_objects_replicate_only_with_the_opt_in() -> None:
    """catalogue: s3.replication-of-sse-kms-needs-opt-in"""
    objects, copies = replication(SourceSelectionCriteria={})
    objects.written("src", "uploads/secret", at(150))
    assert objects.replicate(at(400)) == 0 and copies == []
    plain, plain_copies = replication(kms=False, SourceSelectionCriteria={})
    plain.written("src", "uploads/open", at(150))
    assert plain.replicate(at(400)) == 1 and plain_copies == [("dst", "uploads/open")]


def test_delete_markers_follow_only_when_the_rule_says_so() -> None:
    """catalogue: s3.delete-marker-replication"""
    for enabled, expected in (("Enabled", True), ("Disabled", False)):
        objects, copies = replication(DeleteMarkerReplication={"Status": enabled})
        objects.written("src", "uploads/x", at(150))
        objects.replicate(at(200))
        objects.deleted("src", "uploads/x", at(300))
        objects.replicate(at(400))
        assert (("dst", "deleted:uploads/x") in copies) is expected


def test_rule_metrics_are_published_per_minute_with_latency_and_backlog() -> None:
    """catalogue: s3.rtc-and-replication-metrics"""
    objects, _ = replication()
    objects.written("src", "uploads/a", at(150))
    rule = objects.rules["src"][0]
    pending = objects.rule_metrics("src", rule, at(120), at(160))
    assert pending is not None and pending["OperationsPendingReplication"] == 1
    objects.replicate(at(180))
    done = objects.rule_metrics("src", rule, at(160), at(220))
    assert done is not None and done["ReplicationLatency"] == rule.lag_seconds
    without, _ = replication(Destination={"Bucket": "arn:aws:s3:::dst"})
    assert without.rule_metrics("src", without.rules["src"][0], at(0), at(60)) is None


# --- CloudWatch periods (automation.sandbox.metrics) -----------------------------------------------


def test_a_datapoint_exists_only_once_its_period_ended() -> None:
    """catalogue: elb.metrics-per-60-seconds-only-with-traffic"""
    published: list[dict[str, Any]] = []
    publisher = Publisher(put=lambda region, namespace, data: published.extend(data), region_up=lambda r, t: True)
    publisher.add(Series(DR, "AWS/Test", "Count", {}, lambda start, end: 1.0, "Count", at(0)))
    publisher.add(Series(DR, "AWS/Test", "Quiet", {}, lambda start, end: None, "Count", at(0)))
    publisher.publish_until(at(59))
    assert published == []
    publisher.publish_until(at(130))
    assert [p["Timestamp"] for p in published] == [at(0), at(60)]  # the minute in progress is not there
    assert {p["MetricName"] for p in published} == {"Count"}  # no traffic, no datapoint


# --- Route53 and the load balancers (automation.sandbox.traffic) -------------------------------------


def traffic(records: list[RecordSet], checks: dict[str, dict[str, Any]], **options: Any) -> TrafficModel:
    outages, faults = Timeline(), Timeline()
    return TrafficModel(
        CFG,
        outages=options.get("outages", outages),
        faults=options.get("faults", faults),
        ready_nodes=options.get("ready_nodes", lambda region, when: 1),
        write_refusal=lambda region, when: None,
        health_checks=checks,
        endpoint_regions=lambda: {"p.example.com": PRIMARY, "d.example.com": DR},
        records=lambda: records,
        alarm_datapoints=options.get("alarm", lambda region, name, until: None),
    )


def failover_records(primary_check: str | None, secondary_check: str | None) -> list[RecordSet]:
    name = CFG.app_fqdn
    return [
        RecordSet(name, "PRIMARY", "p.example.com", 60, primary_check),
        RecordSet(name, "SECONDARY", "d.example.com", 60, secondary_check),
    ]


def https(fqdn: str) -> dict[str, Any]:
    return {"Type": "HTTPS", "FullyQualifiedDomainName": fqdn, "RequestInterval": 10, "FailureThreshold": 3}


def test_health_follows_what_the_endpoint_returns_after_the_failure_threshold() -> None:
    """catalogue: route53.endpoint-health-2xx-3xx-and-18-percent"""
    outages = Timeline()
    outages.begin(PRIMARY, at(100))
    model = traffic(
        failover_records("hp", "hd"), {"hp": https("p.example.com"), "hd": https("d.example.com")}, outages=outages
    )
    assert model.healthy("hp", at(99)) and model.healthy("hp", at(110))  # one failed check is not enough
    assert not model.healthy("hp", at(125))  # three in a row
    assert model.answer(at(125)) == DR and model.answer(at(90)) == PRIMARY
    no_targets = traffic([], {"hd": https("d.example.com")}, ready_nodes=lambda region, when: 0)
    assert no_targets.endpoint_outcome(DR, at(0)) == ELB_503 and not no_targets.healthy("hd", at(50))
    reports = model.checker_reports("hp", at(125))
    assert reports and all(region != PRIMARY for region, _ in reports)  # checkers in a down region report nothing


def test_all_unhealthy_answers_primary_and_a_record_without_a_check_counts_as_healthy() -> None:
    """catalogue: route53.failover-all-unhealthy-answers-as-healthy"""
    outages = Timeline()
    outages.begin(PRIMARY, at(0))
    outages.begin(DR, at(0))
    checks = {"hp": https("p.example.com"), "hd": https("d.example.com")}
    assert traffic(failover_records("hp", "hd"), checks, outages=outages).answer(at(100)) == PRIMARY
    assert traffic(failover_records("hp", None), checks, outages=outages).answer(at(100)) == DR


def fence_checks() -> dict[str, dict[str, Any]]:
    alarm = {"Region": DR, "Name": "fence"}
    return {
        "hp": https("p.example.com"),
        "hd": https("d.example.com"),
        "lowered": {
            "Type": "CLOUDWATCH_METRIC",
            "AlarmIdentifier": alarm,
            "InsufficientDataHealthStatus": "LastKnownStatus",
        },
        "raised": {
            "Type": "CLOUDWATCH_METRIC",
            "AlarmIdentifier": alarm,
            "InsufficientDataHealthStatus": "LastKnownStatus",
            "Inverted": True,
        },
        "rp": {"Type": "CALCULATED", "ChildHealthChecks": ["hp", "lowered"], "HealthThreshold": 2},
        "rd": {"Type": "CALCULATED", "ChildHealthChecks": ["hd", "raised"], "HealthThreshold": 1},
    }


def fence_alarm(points: list[tuple[datetime, float]]) -> Any:
    definition = {
        "Period": 60,
        "EvaluationPeriods": 1,
        "Threshold": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
    }
    return lambda region, name, until: (definition, [p for p in points if p[0] <= until])


def test_the_traffic_fence_keeps_a_healthy_returning_primary_out_without_any_new_data() -> None:
    """catalogue: route53.cloudwatch-metric-check-follows-the-alarm, route53.calculated-check-counts-healthy-children"""
    model = traffic(failover_records("rp", "rd"), fence_checks(), alarm=fence_alarm([(at(100), 1.0)]))
    assert model.answer(at(130)) == PRIMARY  # the minute of the datapoint has not been evaluated yet
    assert model.answer(at(200)) == DR
    assert model.answer(at(7200)) == DR  # no data for two hours: the last known status holds
    # The DR record counts as healthy while fenced, so "all unhealthy" can never answer the primary.
    down_dr = Timeline()
    down_dr.begin(DR, at(0))
    fenced = traffic(failover_records("rp", "rd"), fence_checks(), alarm=fence_alarm([(at(100), 1.0)]), outages=down_dr)
    assert fenced.answer(at(7200)) == DR
    lowered = traffic(failover_records("rp", "rd"), fence_checks(), alarm=fence_alarm([(at(100), 1.0), (at(400), 0.0)]))
    assert lowered.answer(at(500)) == PRIMARY


def test_resolvers_move_to_a_new_answer_over_one_ttl() -> None:
    """catalogue: dns.resolvers-cache-for-the-ttl"""
    model = traffic(failover_records("rp", "rd"), fence_checks(), alarm=fence_alarm([(at(1000), 1.0)]))
    moved = at(1000 + ROUTE53_SEES_ALARM_SECONDS)  # the fence's minute evaluated, Route53's checkers following it
    regions = [model.resolver_region(r, moved + timedelta(seconds=30)) for r in range(model.resolvers)]
    assert DR in regions and PRIMARY in regions  # some resolvers still hold the old answer
    later = [
        model.resolver_region(r, moved + timedelta(seconds=CFG.dns_ttl_seconds + 1)) for r in range(model.resolvers)
    ]
    assert set(later) == {DR}


def test_requests_rejected_before_a_target_is_chosen_are_not_in_request_count() -> None:
    """catalogue: elb.request-count-excludes-rejected-requests"""
    checks = {"hp": https("p.example.com"), "hd": https("d.example.com")}
    model = traffic(failover_records("hp", "hd"), checks, ready_nodes=lambda region, when: 0)
    counts = model.period_counts(PRIMARY, at(600))  # nothing Ready anywhere: Route53 answers PRIMARY
    assert counts["RequestCount"] == 0 and counts["HTTPCode_ELB_5XX_Count"] == pytest.approx(1000)
    serving = traffic(failover_records("hp", "hd"), checks)
    assert serving.endpoint_outcome(PRIMARY, at(0)) == OK
    assert serving.period_counts(PRIMARY, at(600))["RequestCount"] == pytest.approx(1000)


# --- the hooks, through one provisioned sandbox ---------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox(server: MotoSandboxServer) -> Iterator[Sandbox]:
    with Sandbox.open(prod_config(), server=server, scale=0) as opened:
        opened.provision()
        yield opened


def test_rds_reports_its_asynchronous_changes_in_progress(sandbox: Sandbox) -> None:
    """catalogue: rds.parameter-change-applies-asynchronously, rds.reboot-ends-every-session,
    rds.snapshot-creation-is-asynchronous, rds.promotion-is-asynchronous"""
    outputs, clients, clock = sandbox.stack.outputs(), sandbox.clients, sandbox.clock
    writer, replica = outputs["database"][PRIMARY]["identifier"], outputs["database"][DR]["identifier"]
    group = next(iter(readiness.describe_database(clients, PRIMARY, writer).parameter_groups))
    actions.set_read_only(clients, PRIMARY, group, writer, clock=clock)  # waits through "applying"
    rds = clients.client("rds", PRIMARY)
    rds.reboot_db_instance(DBInstanceIdentifier=writer)
    assert readiness.describe_database(clients, PRIMARY, writer).status == "rebooting"
    restarted = actions.end_sessions(clients, PRIMARY, writer, after=clock.now() - timedelta(minutes=1), clock=clock)
    assert not restarted.changed and "already restarted" in restarted.detail  # the event, not a second reboot
    assert "restarted at" in actions.verify_fence(
        clients, PRIMARY, group, writer, in_sync_at=clock.now() - timedelta(minutes=5), now=clock.now()
    )

    rds.create_db_snapshot(DBInstanceIdentifier=writer, DBSnapshotIdentifier="manual-1")
    assert rds.describe_db_snapshots(DBSnapshotIdentifier="manual-1")["DBSnapshots"][0]["Status"] == "creating"

    clients.client("rds", DR).promote_read_replica(DBInstanceIdentifier=replica)
    promoting = readiness.describe_database(clients, DR, replica)
    assert (promoting.status, promoting.role) == ("modifying", "replica")
    writer_now = actions.wait_until_writer(clients, DR, replica, interval_seconds=30, clock=clock)
    assert writer_now.standalone_writer


def test_aws_refusals_and_models_that_moto_lacks(sandbox: Sandbox) -> None:
    """catalogue: rds.replica-source-managed-password, elasticache.global-datastore-failover-needs-available,
    elasticache.global-datastore-failover-with-primary-region-down, elasticache.disassociate-makes-standalone,
    eks.node-group-update-is-asynchronous, cloudwatch.treat-missing-data-ignore-keeps-state"""
    clients, outputs = sandbox.clients, sandbox.stack.outputs()
    rds = clients.client("rds", PRIMARY)
    rds.create_db_instance(
        DBInstanceIdentifier="managed",
        Engine="postgres",
        DBInstanceClass="db.r6g.large",
        MasterUsername="admin",
        ManageMasterUserPassword=True,
        AllocatedStorage=20,
    )
    arn = rds.describe_db_instances(DBInstanceIdentifier="managed")["DBInstances"][0]["DBInstanceArn"]
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        clients.client("rds", DR).create_db_instance_read_replica(
            DBInstanceIdentifier="managed-replica", SourceDBInstanceIdentifier=arn, SourceRegion=PRIMARY
        )

    eks = clients.client("eks", DR)
    names = {"clusterName": outputs["clusters"][DR]["name"], "nodegroupName": outputs["clusters"][DR]["nodeGroup"]}
    eks.update_nodegroup_config(**names, scalingConfig={"minSize": 2, "desiredSize": 2, "maxSize": 9})
    assert eks.describe_nodegroup(**names)["nodegroup"]["status"] == "UPDATING"
    with pytest.raises(ClientError, match="ResourceInUseException"):
        eks.update_nodegroup_config(**names, scalingConfig={"minSize": 3, "desiredSize": 3, "maxSize": 9})

    fence = outputs["dns"]["fence"]
    cloudwatch = clients.client("cloudwatch", DR)
    sandbox.record_traffic_fence(True, "test")
    raised = actions.wait_for_traffic_fence(
        clients, fence, raised=True, since=sandbox.clock.now(), interval_seconds=30, clock=sandbox.clock
    )
    assert raised.state == "ALARM"
    sandbox.impair_cloudwatch(DR)  # the publisher puts nothing for an hour: TreatMissingData ignore keeps ALARM
    sandbox.clock.sleep(3600)
    sandbox.restore_cloudwatch(DR)
    assert cloudwatch.describe_alarms(AlarmNames=[fence["alarmName"]])["MetricAlarms"][0]["StateValue"] == "ALARM"

    cache = outputs["cache"]
    elasticache = clients.client("elasticache", DR)
    sandbox.fail_region(PRIMARY)
    with pytest.raises(ClientError, match="InvalidGlobalReplicationGroupState"):
        elasticache.failover_global_replication_group(
            GlobalReplicationGroupId=cache["globalDatastoreId"],
            PrimaryRegion=DR,
            PrimaryReplicationGroupId=cache["groups"][DR],
        )
    elasticache.disassociate_global_replication_group(
        GlobalReplicationGroupId=cache["globalDatastoreId"],
        ReplicationGroupId=cache["groups"][DR],
        ReplicationGroupRegion=DR,
    )
    assert not sandbox.data.cache.is_replica(cache["groups"][DR])  # standalone: takes writes on its own
    sandbox.restore_region(PRIMARY)
