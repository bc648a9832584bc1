"""The traffic fence's publisher: the Lambda handler under moto, what the program declares for it, the authority it
reads, drctl's fence steps, the sandbox's model of Route53 without data, and reading Route53's own answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from automation.aws import actions, route53_view
from automation.aws.clients import AwsClients
from automation.aws.readiness import Status
from automation.aws.waiting import WaitTimeoutError
from automation.aws_rules import check_declared
from automation.dr_state import AUTHORITY_KEY, SCHEMA_VERSION, DrStateAuthority, authority_object_key
from automation.errors import DrctlError
from automation.evaluate import Evaluation
from automation.journal import local_store, s3_store
from automation.sandbox import Sandbox
from automation.sandbox.traffic import LAST_KNOWN_STATUS_HOLD, ROUTE53_SEES_ALARM_SECONDS
from components.config import NAMESPACE
from components.functions import fence_publisher as handler
from components.traffic import fence_alarm_physical_name, fence_alarm_settings

DR, PRIMARY = "us-west-2", "us-east-1"
STACK = "organization/dr-platform/prod"
BUCKET = "acme-drp-drctl-us-west-2"
NAMESPACE_TRAFFIC, METRIC = "dr-platform/Traffic", "FormerRegionFenced"
DIMENSIONS = {"Record": "app.platform.example.com"}


def settings(key: str = authority_object_key(STACK)) -> handler.Settings:
    return handler.Settings(BUCKET, key, NAMESPACE_TRAFFIC, METRIC, DIMENSIONS)


def record(state: str = "steady", fence: str | None = None) -> dict[str, Any]:
    document = {
        "schema": SCHEMA_VERSION,
        "stack": STACK,
        "keys": {f"{NAMESPACE}:drState": state},
        "run_id": "r",
        "operator": "o",
        "written_at": "2025-01-01T00:00:00Z",
    }
    return {**document, "traffic_fence": fence} if fence else document


@pytest.fixture
def moto_aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        s3, cloudwatch = boto3.client("s3", region_name=DR), boto3.client("cloudwatch", region_name=DR)
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": DR})
        yield s3, cloudwatch


def published(cloudwatch: Any) -> list[float]:
    points = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE_TRAFFIC,
        MetricName=METRIC,
        Dimensions=[{"Name": k, "Value": v} for k, v in DIMENSIONS.items()],
        StartTime=datetime.now(UTC) - timedelta(hours=1),
        EndTime=datetime.now(UTC) + timedelta(hours=1),
        Period=60,
        Statistics=["Maximum"],
    )["Datapoints"]
    return [p["Maximum"] for p in points]


# --- the Lambda handler ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "value"),
    [
        (record("steady"), 0.0),
        (record("failed-over"), 1.0),
        (record("resyncing"), 1.0),
        (record("steady", fence="raised"), 1.0),  # drctl raised it before the config moved (emergency failover)
        (record("failed-over", fence="lowered"), 0.0),  # failback switch lowered it
    ],
)
def test_the_handler_reads_the_authority_and_publishes_its_fence(moto_aws, document, value) -> None:
    """catalogue: route53.last-known-status-is-for-brief-gaps"""
    s3, cloudwatch = moto_aws
    s3.put_object(Bucket=BUCKET, Key=settings().key, Body=json.dumps(document).encode())
    result = handler.publish(s3, cloudwatch, settings(), datetime.now(UTC))
    assert result["value"] == value
    assert published(cloudwatch) == [value]


@pytest.mark.parametrize(
    "body",
    [
        None,  # no object: the stack never ran `drctl state init`, or the key is wrong
        b"{not json",
        json.dumps({**record(), "schema": 99}).encode(),
        json.dumps(record(fence="half")).encode(),
        json.dumps(record("weird-state")).encode(),
    ],
)
def test_an_unreadable_authority_publishes_nothing_and_fails_the_invocation(moto_aws, body) -> None:
    """Either value would be a guess, wrong in one state; without a datapoint Route53 keeps the last decided status
    and the silent and errors alarms page. catalogue: route53.last-known-status-is-for-brief-gaps"""
    s3, cloudwatch = moto_aws
    if body is not None:
        s3.put_object(Bucket=BUCKET, Key=settings().key, Body=body)
    with pytest.raises(handler.AuthorityUnreadableError):
        handler.publish(s3, cloudwatch, settings(), datetime.now(UTC))
    assert published(cloudwatch) == []


def test_the_handler_reads_what_drctl_writes_where_drctl_writes_it(moto_aws, monkeypatch) -> None:
    """drctl's DrStateAuthority on the S3 control store and the program's authority key name one object."""
    s3, cloudwatch = moto_aws
    authority = DrStateAuthority(s3_store(STACK, BUCKET, client=s3), STACK)
    authority.write({f"{NAMESPACE}:drState": "steady"}, run_id="init", operator="o", at=datetime.now(UTC))
    authority.write_traffic_fence(raised=True, run_id="failover", operator="o", at=datetime.now(UTC))
    for key, value in {
        "AUTHORITY_BUCKET": BUCKET,
        "AUTHORITY_KEY": authority_object_key(STACK),
        "METRIC_NAMESPACE": NAMESPACE_TRAFFIC,
        "METRIC_NAME": METRIC,
        "METRIC_DIMENSIONS": json.dumps(DIMENSIONS),
        "AWS_DEFAULT_REGION": DR,
    }.items():
        monkeypatch.setenv(key, value)
    assert handler.handler({}, None)["fence"] == "raised"
    assert published(cloudwatch) == [1.0]
    assert handler.AUTHORITY_SCHEMA == SCHEMA_VERSION and f"{NAMESPACE}:drState" == handler.DR_STATE_KEY


def test_the_authority_keeps_the_fence_across_key_writes_and_refuses_it_before_init(tmp_path) -> None:
    authority = DrStateAuthority(local_store(STACK, root=tmp_path), STACK)
    now = datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(DrctlError, match="the traffic fence is published from it"):
        authority.write_traffic_fence(raised=True, run_id="r", operator="o", at=now)
    authority.write({f"{NAMESPACE}:drState": "steady"}, run_id="init", operator="o", at=now)
    assert authority.read().fence_raised is False
    authority.write_traffic_fence(raised=True, run_id="failover", operator="o", at=now + timedelta(seconds=1))
    authority.write({f"{NAMESPACE}:drState": "failed-over"}, run_id="failover", operator="o", at=now)
    found = authority.read()
    assert (found.traffic_fence, found.fence_raised, found.keys[f"{NAMESPACE}:drState"]) == (
        "raised",
        True,
        "failed-over",
    )


# --- what the program declares -------------------------------------------------------------------------


def by_name(evaluation: Evaluation, type_token: str, name: str) -> Any:
    return evaluation.one(type_token, name).inputs


def test_a_schedule_runs_the_publisher_every_minute_in_the_dr_region_without_retries(steady: Evaluation) -> None:
    """catalogue: scheduler.rate-one-minute-at-most-once-a-minute, scheduler.execution-role-trust,
    lambda.async-invoke-retries"""
    schedule = steady.one("aws:scheduler/schedule:Schedule", "fence-publisher-every-minute")
    function = steady.one("aws:lambda/function:Function", "fence-publisher-function")
    assert schedule.region == function.region == DR
    assert schedule.inputs["scheduleExpression"] == "rate(1 minute)"
    assert schedule.inputs["flexibleTimeWindow"] == {"mode": "OFF"}
    assert schedule.inputs["target"]["retryPolicy"] == {"maximumRetryAttempts": 0, "maximumEventAgeInSeconds": 60}
    assert schedule.inputs["target"]["arn"].endswith(function.inputs["name"])
    no_retries = by_name(
        steady, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "fence-publisher-no-retries"
    )
    assert (no_retries["maximumRetryAttempts"], no_retries["maximumEventAgeInSeconds"]) == (0, 60)
    trust = json.loads(by_name(steady, "aws:iam/role:Role", "fence-publisher-schedule")["assumeRolePolicy"])
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]
    invoke = json.loads(by_name(steady, "aws:iam/rolePolicy:RolePolicy", "fence-publisher-schedule")["policy"])
    assert invoke["Statement"] == [
        {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": schedule.inputs["target"]["arn"]}
    ]
    # The code packaged is the handler in the repository.
    archive = function.inputs["code"]["archive"]
    assert list(archive) == ["fence_publisher.py"] and archive["fence_publisher.py"]["asset"]["path"].endswith(
        "components/functions/fence_publisher.py"
    )
    assert function.inputs["handler"] == "fence_publisher.handler"
    assert not [r for r in check_declared(steady) if "fence-publisher" in r.urn]


def test_the_publisher_reads_exactly_the_authority_and_publishes_only_the_fence_namespace(steady: Evaluation) -> None:
    """catalogue: kms.s3-bucket-key-encryption-context, cloudwatch.put-metric-data-namespace-condition"""
    function = by_name(steady, "aws:lambda/function:Function", "fence-publisher-function")
    env = function["environment"]["variables"]
    assert (env["AUTHORITY_BUCKET"], env["AUTHORITY_KEY"]) == (BUCKET, f"drctl/{STACK}/{AUTHORITY_KEY}")
    assert (env["METRIC_NAMESPACE"], env["METRIC_NAME"], json.loads(env["METRIC_DIMENSIONS"])) == (
        NAMESPACE_TRAFFIC,
        METRIC,
        steady.outputs["dns"]["fence"]["dimensions"],
    )
    policy = json.loads(by_name(steady, "aws:iam/rolePolicy:RolePolicy", "fence-publisher-function")["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["ReadTheDrStateAuthority"]["Action"] == "s3:GetObject"
    assert statements["ReadTheDrStateAuthority"]["Resource"] == f"arn:aws:s3:::{BUCKET}/{env['AUTHORITY_KEY']}"
    decrypt = statements["DecryptItThroughS3"]
    assert decrypt["Action"] == "kms:Decrypt"
    assert decrypt["Condition"]["StringEquals"] == {
        "kms:ViaService": f"s3.{DR}.amazonaws.com",
        "kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{BUCKET}",
    }
    put = statements["PublishTheFence"]
    assert put["Condition"] == {"StringEquals": {"cloudwatch:namespace": NAMESPACE_TRAFFIC}}
    allowed = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert allowed == {
        "s3:GetObject",
        "kms:Decrypt",
        "cloudwatch:PutMetricData",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }


def test_alarms_page_when_the_publisher_stops_or_fails(steady: Evaluation) -> None:
    """catalogue: cloudwatch.missing-data-breaching, lambda.async-invoke-retries"""
    topic = steady.outputs["alertTopics"][DR]
    silent = steady.one("aws:cloudwatch/metricAlarm:MetricAlarm", "fence-publisher-silent")
    assert silent.region == DR
    assert (silent.inputs["namespace"], silent.inputs["metricName"], silent.inputs["dimensions"]) == (
        NAMESPACE_TRAFFIC,
        METRIC,
        DIMENSIONS,
    )
    assert (silent.inputs["statistic"], silent.inputs["comparisonOperator"], silent.inputs["threshold"]) == (
        "SampleCount",
        "LessThanThreshold",
        1,
    )
    assert silent.inputs["treatMissingData"] == "breaching"
    errors = by_name(steady, "aws:cloudwatch/metricAlarm:MetricAlarm", "fence-publisher-errors")
    assert (errors["namespace"], errors["metricName"]) == ("AWS/Lambda", "Errors")
    assert errors["dimensions"] == {"FunctionName": "acme-drp-usw2-fence-publisher"}
    for alarm in (silent.inputs, errors):
        assert alarm["alarmActions"] == alarm["okActions"] == [topic]


def test_a_change_of_the_fence_alarms_settings_renames_it_so_route53_rereads_them(steady: Evaluation) -> None:
    """Route53 copies the alarm's settings only on CreateHealthCheck/UpdateHealthCheck; the provider sends
    UpdateHealthCheck with the AlarmIdentifier when the alarm's name changes.
    catalogue: route53.alarm-settings-need-update-health-check"""
    fence = steady.outputs["dns"]["fence"]
    settings_now = fence_alarm_settings(steady.config.app_fqdn)
    assert fence["alarmName"] == fence_alarm_physical_name("acme-drp-usw2-traffic-fence", settings_now)
    for change in ({"period": 120}, {"threshold": 0.5}, {"statistic": "Average"}, {"evaluation_periods": 2}):
        assert fence_alarm_physical_name("x", {**settings_now, **change}) != fence_alarm_physical_name(
            "x", settings_now
        )
    checks = [
        c for c in steady.of_type("aws:route53/healthCheck:HealthCheck") if c.inputs["type"] == "CLOUDWATCH_METRIC"
    ]
    assert {c.inputs["cloudwatchAlarmName"] for c in checks} == {fence["alarmName"]}


# --- drctl's wait, and the sandbox's Route53 ---------------------------------------------------------------


@pytest.fixture
def sandbox(server) -> Iterator[Sandbox]:
    with Sandbox.open(server=server, start=datetime(2025, 1, 1, 2, 0, 20, tzinfo=UTC)) as opened:
        opened.provision()
        yield opened


def fence_checks(sandbox: Sandbox) -> tuple[str, str]:
    fence = sandbox.stack.outputs()["dns"]["fence"]
    return fence["raisedCheckId"], fence["loweredCheckId"]


def test_drctl_waits_for_the_publishers_data_and_the_flip_takes_one_to_two_minutes(sandbox: Sandbox) -> None:
    """catalogue: route53.fence-flip-time, route53.last-known-status-is-for-brief-gaps"""
    fence = sandbox.stack.outputs()["dns"]["fence"]
    raised_check, lowered_check = fence_checks(sandbox)
    sandbox.clock.sleep(300)  # the publisher has put "lowered" for minutes
    assert sandbox.traffic.healthy(lowered_check, sandbox.clock.now())
    written = sandbox.clock.now()
    sandbox.record_traffic_fence(True, "test")
    outcome = actions.wait_for_traffic_fence(
        sandbox.clients, fence, raised=True, since=written, interval_seconds=5, clock=sandbox.clock
    )
    assert outcome.state == "ALARM" and outcome.changed
    flip = next(
        seconds
        for seconds in range(0, 300, 5)
        if sandbox.traffic.healthy(raised_check, written + timedelta(seconds=seconds))
        and not sandbox.traffic.healthy(lowered_check, written + timedelta(seconds=seconds))
    )
    assert 60 <= flip <= 120 + ROUTE53_SEES_ALARM_SECONDS - 60  # next run within the minute, its end, evaluation


def test_without_a_publisher_drctl_times_out_instead_of_publishing_itself(sandbox: Sandbox) -> None:
    """An authority the publisher cannot read: nothing is published and the wait ends in a timeout that names
    the publisher; the DR region's CloudWatch impaired: the wait stops at once, naming the region."""
    fence = sandbox.stack.outputs()["dns"]["fence"]
    sandbox.fence_authority.write(sandbox.clock.now(), {"schema": 99})
    with pytest.raises(WaitTimeoutError, match="fence publisher"):
        actions.wait_for_traffic_fence(
            sandbox.clients,
            fence,
            raised=True,
            since=sandbox.clock.now(),
            timeout_seconds=180,
            interval_seconds=30,
            clock=sandbox.clock,
        )
    sandbox.record_traffic_fence(True, "test")
    sandbox.impair_cloudwatch(DR)
    with pytest.raises(DrctlError, match=DR):
        actions.wait_for_traffic_fence(
            sandbox.clients, fence, raised=True, since=sandbox.clock.now(), interval_seconds=30, clock=sandbox.clock
        )
    sandbox.restore_cloudwatch(DR)
    fenced = actions.wait_for_traffic_fence(
        sandbox.clients, fence, raised=True, since=sandbox.clock.now(), interval_seconds=15, clock=sandbox.clock
    )
    assert fenced.state == "ALARM"


def test_route53_keeps_the_last_status_only_for_hours_when_the_dr_region_goes_down(sandbox: Sandbox) -> None:
    """The fence raised, then the DR region (and the publisher with it) down: the checks hold the raised status
    for a few hours, then read as checks with no status, healthy: the lowered check lets the primary back in.
    catalogue: route53.last-known-status-is-for-brief-gaps, route53.cloudwatch-metric-check-follows-the-alarm"""
    raised_check, lowered_check = fence_checks(sandbox)
    sandbox.record_traffic_fence(True, "test")
    sandbox.clock.sleep(300)
    sandbox.publish_metrics()
    assert sandbox.traffic.healthy(raised_check, sandbox.clock.now())
    assert not sandbox.traffic.healthy(lowered_check, sandbox.clock.now())
    sandbox.fail_region(DR)
    down_at = sandbox.clock.now()
    held = down_at + timedelta(hours=1)
    assert not sandbox.traffic.healthy(lowered_check, held)  # last status held, not "healthy because down"
    lapsed = down_at + LAST_KNOWN_STATUS_HOLD + timedelta(minutes=5)
    assert sandbox.traffic.healthy(lowered_check, lapsed) and not sandbox.traffic.healthy(raised_check, lapsed)
    sandbox.restore_region(DR)


def test_route53s_answer_is_read_from_its_checks_and_the_authoritative_name_servers(sandbox: Sandbox) -> None:
    """W6. catalogue: route53.health-check-status-api-not-for-calculated"""
    outputs = sandbox.stack.outputs()
    dns = outputs["dns"]
    sandbox.clock.sleep(180)
    kwargs = {"resolve": sandbox.authoritative_answer, "find_name_servers": sandbox.zone_name_servers}
    steady = route53_view.route53_answer(sandbox.clients, dns, expected_region=PRIMARY, **kwargs)
    assert steady.status is Status.OK and steady.facts["route53Api"] == {"raised": False, "lowered": True}
    wrong = route53_view.route53_answer(sandbox.clients, dns, expected_region=DR, **kwargs)
    assert wrong.status is Status.FAILING and "not " + dns["endpoints"][DR] in wrong.detail
    # Routing checks are CALCULATED: GetHealthCheckStatus refuses them, as AWS does.
    with pytest.raises(ClientError, match="InvalidInput"):
        sandbox.clients.client("route53", PRIMARY).get_health_check_status(HealthCheckId=dns["routingChecks"][DR])
    # Route53's API gone (us-east-1 down with the control planes): the name servers' answer alone.
    sandbox.record_traffic_fence(True, "test")
    sandbox.fail_region(PRIMARY, global_control_planes=True)
    sandbox.clock.sleep(150 + sandbox.cfg.dns_ttl_seconds)
    failed_over = route53_view.route53_answer(sandbox.clients, dns, expected_region=DR, **kwargs)
    assert failed_over.status is Status.OK and failed_over.facts["route53Api"] is None
    assert failed_over.value == dns["endpoints"][DR]
    sandbox.restore_region(PRIMARY)


def test_route53_answer_with_a_stubbed_api_and_resolver() -> None:
    """Stubber: both fence checks' reports from Route53's API, the answer from the zone's name servers.
    catalogue: route53.health-check-status-reports-success-or-failure"""
    clients = AwsClients(
        None, session=boto3.session.Session(aws_access_key_id="x", aws_secret_access_key="x", region_name=PRIMARY)
    )
    route53 = clients.client("route53", PRIMARY)
    dns = {
        "recordName": "app.example.com",
        "zoneId": "Z1",
        "zoneName": "example.com",
        "nameServers": ["ns-1.example.net"],
        "endpoints": {PRIMARY: "p.elb.amazonaws.com", DR: "d.elb.amazonaws.com"},
        "fence": {"raisedCheckId": "raised", "loweredCheckId": "lowered", "fencedRegion": PRIMARY},
    }

    def reports(healthy: bool) -> dict[str, Any]:
        status = "Success: the alarm is OK" if healthy else "Failure: the alarm is in ALARM"
        return {
            "HealthCheckObservations": [
                {"Region": r, "IPAddress": "192.0.2.1", "StatusReport": {"Status": status}}
                for r in ("us-east-1", "us-west-2", "eu-west-1")
            ]
        }

    asked: list[tuple[str, str, list[str]]] = []

    def resolve(name: str, rdtype: str, servers: Any) -> str:
        asked.append((name, rdtype, list(servers)))
        return "d.elb.amazonaws.com."

    with Stubber(route53) as stub:
        stub.add_response("get_health_check_status", reports(True), {"HealthCheckId": "raised"})
        stub.add_response("get_health_check_status", reports(False), {"HealthCheckId": "lowered"})
        found = route53_view.route53_answer(clients, dns, expected_region=DR, resolve=resolve)
        stub.assert_no_pending_responses()
    assert found.status is Status.OK and found.value == "d.elb.amazonaws.com"
    assert asked == [("app.example.com", "CNAME", ["ns-1.example.net"])]

    with Stubber(route53) as stub:  # the checks disagree with the answer: FAILING, naming Route53's view
        stub.add_response("get_health_check_status", reports(False), {"HealthCheckId": "raised"})
        stub.add_response("get_health_check_status", reports(True), {"HealthCheckId": "lowered"})
        disagreeing = route53_view.route53_answer(clients, dns, expected_region=DR, resolve=resolve)
    assert disagreeing.status is Status.FAILING and "fence checks say raised=False" in disagreeing.detail

    with Stubber(route53) as stub:  # the API refuses: the name servers decide
        stub.add_client_error("get_health_check_status", "ServiceUnavailable", http_status_code=503)
        dns_only = route53_view.route53_answer(clients, dns, expected_region=DR, resolve=resolve)
    assert dns_only.status is Status.OK and dns_only.facts["route53Api"] is None


def test_with_the_dr_regions_cloudwatch_impaired_the_fence_is_pinned_through_route53(sandbox: Sandbox) -> None:
    """R3: no datapoint can reach Route53, but its control plane answers: the fence checks are pinned (disabled;
    the lowered one inverted), which no lapse of LastKnownStatus undoes; unpinned, they follow the data again.
    catalogue: route53.disabled-check-is-healthy-inverted-unhealthy"""
    fence = sandbox.stack.outputs()["dns"]["fence"]
    raised_check, lowered_check = fence_checks(sandbox)
    sandbox.clock.sleep(180)
    sandbox.impair_cloudwatch(DR)
    pinned = actions.pin_traffic_fence(sandbox.clients, fence, raised=True)
    assert pinned.changed and not actions.pin_traffic_fence(sandbox.clients, fence, raised=True).changed
    later = sandbox.clock.now() + LAST_KNOWN_STATUS_HOLD + timedelta(hours=1)
    assert sandbox.traffic.healthy(raised_check, later) and not sandbox.traffic.healthy(lowered_check, later)
    assert sandbox.traffic.answer(later) == DR
    sandbox.restore_cloudwatch(DR)
    unpinned = actions.pin_traffic_fence(sandbox.clients, fence, raised=False)
    assert unpinned.changed and unpinned.state == "data"
    sandbox.clock.sleep(180)
    sandbox.publish_metrics()
    now = sandbox.clock.now()
    assert sandbox.traffic.healthy(lowered_check, now) and not sandbox.traffic.healthy(raised_check, now)
