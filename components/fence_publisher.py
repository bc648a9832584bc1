"""The traffic fence's publisher: every minute, in the DR region, the fence value the DR state authority decides.

Route53's fence checks read the data stream of the fence alarm's metric and keep
their last status only while it is briefly unavailable (catalogue:
route53.last-known-status-is-for-brief-gaps), so the fence needs a datapoint every
minute for as long as it stands, raised or lowered. AWS runs that work:

- an EventBridge Scheduler schedule, `rate(1 minute)`, the shortest it allows
  (catalogue: scheduler.rate-one-minute-at-most-once-a-minute), invokes
- a small Lambda function (`components/functions/fence_publisher.py`) that reads
  `dr-state.json` from drctl's control store (read-only, that one object; the
  store's KMS key only through S3 for that bucket) and puts 1 (raised) or 0
  (lowered) in `dr-platform/Traffic` (PutMetricData limited to that namespace:
  catalogue cloudwatch.put-metric-data-namespace-condition);
- two alarms to the DR region's alert topic: the publisher is silent (no datapoint
  for three minutes; missing data breaches) or failing (Lambda Errors).

Everything lives in the DR region, which an emergency failover already depends
on. Neither retries nor late deliveries are wanted (the next minute's run reads
the authority afresh), so both the schedule and the function's asynchronous
invocation give up on an event after 60 s.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypedDict

import pulumi
import pulumi_aws as aws

from components.config import PlatformConfig
from components.iam import instance_trust, lambda_log_group, lambda_log_statement, role_boundary, service_trust
from components.naming import physical_name, region_code

HANDLER_SOURCE = Path(__file__).resolve().parent / "functions" / "fence_publisher.py"
RUNTIME = "python3.12"
SCHEDULE = "rate(1 minute)"
TIMEOUT_SECONDS = 20
"""One S3 read and one PutMetricData; well inside the minute before the next run."""
STALE_EVENT_SECONDS = 60
"""The shortest age Scheduler and Lambda accept for an event: a late run would only repeat the next one."""
SILENT_MINUTES = 3
"""Minutes without a fence datapoint before the silent alarm pages (Scheduler runs within each minute)."""


def fence_publisher_name(name_prefix: str, dr_region: str) -> str:
    """The function and its execution role, as `physical_name` would name them; the bootstrap's storage key
    names the role before it exists (bootstrap/stack.py), so this takes the two values both stacks know."""
    return f"{name_prefix}-{region_code(dr_region)}-fence-publisher"


class FencePublisherArgs(TypedDict):
    config: PlatformConfig
    account_id: pulumi.Input[str]
    authority_key: str
    """The DR state authority's object key in the control-store bucket (automation/dr_state.py)."""
    namespace: str
    metric_name: str
    dimensions: dict[str, str]
    alert_topic_arn: pulumi.Input[str]
    """The DR region's alert topic (an alarm notifies topics of its own region only)."""
    global_provider: aws.Provider
    """Where IAM roles are declared (components/providers.py)."""


class FencePublisher(pulumi.ComponentResource):
    """Schedule, function, roles and alarms; declared with the DR region's provider."""

    function_name: pulumi.Output[str]

    def __init__(self, name: str, args: FencePublisherArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:traffic:FencePublisher", name, None, opts)
        cfg = args["config"]
        child = pulumi.ResourceOptions(parent=self)
        in_global = pulumi.ResourceOptions(parent=self, provider=args["global_provider"])
        function_name = fence_publisher_name(cfg.name_prefix, cfg.dr_region)
        region, bucket = cfg.dr_region, cfg.control_store_bucket
        bucket_arn = f"arn:aws:s3:::{bucket}"

        execution_role = aws.iam.Role(
            f"{name}-function",
            name=function_name,
            permissions_boundary=role_boundary(args["account_id"]),
            assume_role_policy=instance_trust("lambda.amazonaws.com"),
            opts=in_global,
        )
        permissions = aws.iam.RolePolicy(
            f"{name}-function",
            role=execution_role.id,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "ReadTheDrStateAuthority",
                            "Effect": "Allow",
                            "Action": "s3:GetObject",
                            "Resource": f"{bucket_arn}/{args['authority_key']}",
                        },
                        {
                            # catalogue: kms.s3-bucket-key-encryption-context
                            "Sid": "DecryptItThroughS3",
                            "Effect": "Allow",
                            "Action": "kms:Decrypt",
                            "Resource": f"arn:aws:kms:{region}:*:key/*",
                            "Condition": {
                                "StringEquals": {
                                    "kms:ViaService": f"s3.{region}.amazonaws.com",
                                    "kms:EncryptionContext:aws:s3:arn": bucket_arn,
                                }
                            },
                        },
                        {
                            # catalogue: cloudwatch.put-metric-data-namespace-condition
                            "Sid": "PublishTheFence",
                            "Effect": "Allow",
                            "Action": "cloudwatch:PutMetricData",
                            "Resource": "*",
                            "Condition": {"StringEquals": {"cloudwatch:namespace": args["namespace"]}},
                        },
                        lambda_log_statement(region, function_name),
                    ],
                }
            ),
            opts=in_global,
        )
        logs = lambda_log_group(f"{name}-function", function_name, cfg.log_group_retention_days, child)
        function = aws.lambda_.Function(
            f"{name}-function",
            name=function_name,
            description="Publishes the traffic fence every minute from drctl's DR state authority",
            runtime=RUNTIME,
            handler="fence_publisher.handler",
            code=pulumi.AssetArchive({"fence_publisher.py": pulumi.FileAsset(str(HANDLER_SOURCE))}),
            role=execution_role.arn,
            timeout=TIMEOUT_SECONDS,
            memory_size=128,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    "AUTHORITY_BUCKET": bucket,
                    "AUTHORITY_KEY": args["authority_key"],
                    "METRIC_NAMESPACE": args["namespace"],
                    "METRIC_NAME": args["metric_name"],
                    "METRIC_DIMENSIONS": json.dumps(args["dimensions"], sort_keys=True),
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permissions, logs]),
        )
        # catalogue: lambda.async-invoke-retries
        aws.lambda_.FunctionEventInvokeConfig(
            f"{name}-no-retries",
            function_name=function.name,
            maximum_retry_attempts=0,
            maximum_event_age_in_seconds=STALE_EVENT_SECONDS,
            opts=child,
        )

        # catalogue: scheduler.execution-role-trust
        scheduler_role = aws.iam.Role(
            f"{name}-schedule",
            permissions_boundary=role_boundary(args["account_id"]),
            assume_role_policy=service_trust("scheduler.amazonaws.com", args["account_id"], documented=True),
            opts=in_global,
        )
        invoke = aws.iam.RolePolicy(
            f"{name}-schedule",
            role=scheduler_role.id,
            policy=pulumi.Output.json_dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": function.arn}],
                }
            ),
            opts=in_global,
        )
        # catalogue: scheduler.rate-one-minute-at-most-once-a-minute
        aws.scheduler.Schedule(
            f"{name}-every-minute",
            name=function_name,
            description="Runs the traffic fence publisher every minute",
            schedule_expression=SCHEDULE,
            flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
            target=aws.scheduler.ScheduleTargetArgs(
                arn=function.arn,
                role_arn=scheduler_role.arn,
                retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                    maximum_retry_attempts=0, maximum_event_age_in_seconds=STALE_EVENT_SECONDS
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[invoke]),
        )

        topic = [args["alert_topic_arn"]]
        self.silent_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-silent",
            name=physical_name(cfg, region, "fence-publisher-silent"),
            alarm_description=(
                f"No traffic fence datapoint for {SILENT_MINUTES} minutes: Route53 holds the fence's last status "
                "only for a brief gap. Check the fence publisher (schedule, function, its logs) in this region."
            ),
            namespace=args["namespace"],
            metric_name=args["metric_name"],
            dimensions=args["dimensions"],
            statistic="SampleCount",
            period=60,
            evaluation_periods=SILENT_MINUTES,
            threshold=1,
            comparison_operator="LessThanThreshold",
            # catalogue: cloudwatch.missing-data-breaching
            treat_missing_data="breaching",
            alarm_actions=topic,
            ok_actions=topic,
            opts=child,
        )
        self.errors_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-errors",
            name=physical_name(cfg, region, "fence-publisher-errors"),
            alarm_description=(
                "The traffic fence publisher fails (it publishes nothing when it cannot read the DR state "
                "authority): read its logs; the fence holds its last status only for a brief gap."
            ),
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions={"FunctionName": function_name},
            statistic="Sum",
            period=60,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            threshold=1,
            comparison_operator="GreaterThanOrEqualToThreshold",
            # No invocation, no Errors datapoint: the silent alarm covers a publisher that does not run.
            treat_missing_data="notBreaching",
            alarm_actions=topic,
            ok_actions=topic,
            opts=child,
        )
        self.function_name = function.name
        self.summary = {
            "functionName": function.name,
            "schedule": SCHEDULE,
            "authority": f"s3://{bucket}/{args['authority_key']}",
            "silentAlarmName": self.silent_alarm.name,
            "errorsAlarmName": self.errors_alarm.name,
        }
        self.register_outputs({"summary": self.summary})
