"""AWS Fault Injection Service templates for live drills, in one region (only when `faultInjection` is on).

Two experiment templates that a live drill (`drctl drill --live`) starts in the
region it cuts off, each stopped by the region's drill-abort alarm:

- `crossRegionConnectivity`: route tables of the application and data
  subnets stop routing to the other region (FIS's
  `aws:network:route-table-disrupt-cross-region-connectivity`): pods, the
  database clients and the cache clients lose the other region. Traffic of
  AWS-managed replication (RDS, ElastiCache, S3) does not pass through these
  route tables and is not cut (catalogue: fis.cross-region-connectivity-scope);
- `s3ReplicationPause`: the region's data bucket stops replicating to the
  other region (`aws:s3:bucket-pause-replication`), for as long as the drill says.
  Only the bucket that is currently the replication source has anything to pause.

Aborting: the drill-abort alarm watches `DrPlatform/Drill AbortRequested`
(dimension `Region`) and goes to ALARM on any datapoint >= 1; FIS stops every
experiment of the region whose stop condition it is. `drctl` aborts by putting
that datapoint (`put_metric_data`), or at once with `set_alarm_state ALARM`
(docs/drills.md, "Fault injection").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TypedDict

import pulumi
import pulumi_aws as aws

from components.config import PlatformConfig
from components.database import other_role
from components.iam import role_boundary, service_trust
from components.naming import REGION_ROLE_TAG, STACK_TAG, data_bucket_name, drill_abort_alarm_name

ABORT_NAMESPACE = "DrPlatform/Drill"
ABORT_METRIC = "AbortRequested"
ABORT_DIMENSION = "Region"
NETWORK_POLICY = "arn:aws:iam::aws:policy/service-role/AWSFaultInjectionSimulatorNetworkAccess"


class FaultInjectionArgs(TypedDict):
    config: PlatformConfig
    role: str
    account_id: pulumi.Input[str]
    subnet_arns: Sequence[pulumi.Input[str]]
    """The subnets cut off from the other region: the application and data tiers."""
    alert_topic_arn: pulumi.Input[str]
    """An abort is announced where the region's alarms go."""
    global_provider: aws.Provider
    """Where IAM resources are declared (components/providers.py: the DR region's provider)."""


def _parameters(**values: str) -> list[aws.fis.ExperimentTemplateActionParameterArgs]:
    return [aws.fis.ExperimentTemplateActionParameterArgs(key=key, value=value) for key, value in values.items()]


def iso_minutes(minutes: int) -> str:
    """FIS durations are ISO 8601: `PT30M`."""
    return f"PT{minutes}M"


class FaultInjection(pulumi.ComponentResource):
    """Takes its region from the provider the caller passes in `opts`."""

    def __init__(self, name: str, args: FaultInjectionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:drills:FaultInjection", name, None, opts)
        cfg, role = args["config"], args["role"]
        region, other_region = cfg.region_of(role), cfg.region_of(other_role(role))
        duration = iso_minutes(cfg.fault_injection.duration_minutes)
        child = pulumi.ResourceOptions(parent=self)

        self.abort_alarm = aws.cloudwatch.MetricAlarm(
            f"{name}-abort",
            name=drill_abort_alarm_name(cfg, role),
            alarm_description=(
                f"[warning] A live drill in {region} was told to stop: every fault-injection experiment of "
                "the region stops on this alarm."
            ),
            namespace=ABORT_NAMESPACE,
            metric_name=ABORT_METRIC,
            dimensions={ABORT_DIMENSION: region},
            statistic="Maximum",
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=1,
            period=60,
            evaluation_periods=1,
            # No request to abort is the normal state.
            treat_missing_data="notBreaching",
            alarm_actions=[args["alert_topic_arn"]],
            ok_actions=[args["alert_topic_arn"]],
            tags={"severity": "warning"},
            opts=child,
        )
        stop_on_abort = [
            # catalogue: fis.stop-condition-alarm
            aws.fis.ExperimentTemplateStopConditionArgs(source="aws:cloudwatch:alarm", value=self.abort_alarm.arn)
        ]

        in_global = pulumi.ResourceOptions(parent=self, provider=args["global_provider"])
        experiment_role = aws.iam.Role(
            f"{name}-experiments",
            permissions_boundary=role_boundary(args["account_id"]),
            # catalogue: fis.role-source-conditions
            assume_role_policy=service_trust(
                "fis.amazonaws.com",
                args["account_id"],
                source_arn=pulumi.Output.concat(f"arn:aws:fis:{region}:", args["account_id"], ":experiment/*"),
                documented=True,
            ),
            opts=in_global,
        )
        network_access = aws.iam.RolePolicyAttachment(
            f"{name}-experiments-network", role=experiment_role.name, policy_arn=NETWORK_POLICY, opts=in_global
        )
        # The region's data bucket only, and its replication configuration only to pause it.
        # catalogue: fis.s3-pause-replication
        bucket = f"arn:aws:s3:::{data_bucket_name(cfg, role)}"
        replication_pause = aws.iam.RolePolicy(
            f"{name}-experiments-s3",
            role=experiment_role.id,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["s3:PutReplicationConfiguration", "s3:GetReplicationConfiguration"],
                            "Resource": bucket,
                            "Condition": {"Bool": {"s3:IsReplicationPauseRequest": "true"}},
                        },
                        {"Effect": "Allow", "Action": "s3:PauseReplication", "Resource": bucket},
                        {"Effect": "Allow", "Action": ["s3:ListAllMyBuckets", "tag:GetResources"], "Resource": "*"},
                    ],
                }
            ),
            opts=in_global,
        )

        def template(
            purpose: str, description: str, target: aws.fis.ExperimentTemplateTargetArgs, action: str
        ) -> aws.fis.ExperimentTemplate:
            return aws.fis.ExperimentTemplate(
                f"{name}-{purpose}",
                description=f"{description} for {duration}",
                role_arn=experiment_role.arn,
                stop_conditions=stop_on_abort,
                targets=[target],
                actions=[
                    aws.fis.ExperimentTemplateActionArgs(
                        name=purpose,
                        action_id=action,
                        parameters=_parameters(region=other_region, duration=duration),
                        target=aws.fis.ExperimentTemplateActionTargetArgs(key=target.name, value=target.name),
                    )
                ],
                # A template whose targets are gone fails instead of "succeeding" at nothing.
                experiment_options=aws.fis.ExperimentTemplateExperimentOptionsArgs(
                    account_targeting="single-account", empty_target_resolution_mode="fail"
                ),
                tags={"Name": f"{cfg.name_prefix}-{region}-{purpose}"},
                opts=pulumi.ResourceOptions(parent=self, depends_on=[network_access, replication_pause]),
            )

        # catalogue: fis.cross-region-connectivity-scope
        self.cross_region = template(
            "cross-region",
            f"Cut {region}'s application and data subnets off from {other_region}",
            aws.fis.ExperimentTemplateTargetArgs(
                name="Subnets",
                resource_type="aws:ec2:subnet",
                resource_arns=list(args["subnet_arns"]),
                selection_mode="ALL",
            ),
            "aws:network:route-table-disrupt-cross-region-connectivity",
        )
        # catalogue: fis.s3-pause-replication (targets by tags only)
        self.s3_pause = template(
            "s3-pause",
            f"Pause replication of {region}'s data bucket to {other_region}",
            aws.fis.ExperimentTemplateTargetArgs(
                name="Buckets",
                resource_type="aws:s3:bucket",
                # The provider's default tags name the stack and the region role of every bucket.
                resource_tags=[
                    aws.fis.ExperimentTemplateTargetResourceTagArgs(key=key, value=value)
                    for key, value in ((STACK_TAG, pulumi.get_stack()), (REGION_ROLE_TAG, role))
                ],
                selection_mode="ALL",
            ),
            "aws:s3:bucket-pause-replication",
        )
        self.summary = {
            "crossRegionConnectivity": self.cross_region.id,
            "s3ReplicationPause": self.s3_pause.id,
            "abortAlarm": self.abort_alarm.name,
            "abortAlarmArn": self.abort_alarm.arn,
            "abortMetric": {
                "namespace": ABORT_NAMESPACE,
                "name": ABORT_METRIC,
                "dimensions": {ABORT_DIMENSION: region},
            },
            "durationMinutes": cfg.fault_injection.duration_minutes,
        }
        self.register_outputs({"summary": self.summary})
