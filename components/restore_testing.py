"""AWS Backup restore testing in one region: AWS restores the newest backups every day and checks them.

A restore testing plan picks, on `restoreTestingSchedule`, the newest recovery
point of every protected database and bucket in the region's vault, which holds
the region's own backups and the cross-region copies from the other region, and
AWS Backup restores each one (`RestoreTestingSelection`, one per resource type),
keeps it for `restoreTestingValidationWindowHours`, then deletes it.

The restored database comes up in the region's data subnets behind the database
security group (the copies of the other region's database included: the subnet
group and security group are overridden, since the inferred ones are the other
region's); a restored bucket is encrypted with the region's key.

When a job ends, EventBridge invokes a small validation function (the code is
`components/functions/restore_validation.py`) that checks status, age,
encryption and reachability, posts the result to the restore job, and counts it
in CloudWatch. The region's alarms (`components/alarms.py`) page on a failed
test, and on a day without a passing one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TypedDict

import pulumi
import pulumi_aws as aws

from components.config import PlatformConfig
from components.iam import account_of, instance_trust, lambda_log_group, lambda_log_statement, role_boundary
from components.naming import (
    db_subnet_group_name,
    physical_name,
    restore_testing_plan_name,
    restore_validator_name,
)
from components.network import POSTGRES_PORT

HANDLER_SOURCE = Path(__file__).resolve().parent / "functions" / "restore_validation.py"
RUNTIME = "python3.12"
METRIC_NAMESPACE = "DrPlatform/RestoreTesting"
MAX_RECOVERY_POINT_AGE = timedelta(hours=27)
"""A daily backup may start and finish within the plan's windows: one day and three hours at most.
`drctl backup-verify` holds its on-demand restore to the same bound."""
SELECTION_WINDOW_DAYS = 2
"""Recovery points restore testing may pick; older ones are left out, so a stalled backup shows as no test."""
START_WINDOW_HOURS = 2
RESTORE_TEST_TAG = "awsbackup-restore-test"
"""AWS Backup names and tags what it restores for a test so (catalogue: backup.restore-testing-cleanup)."""
VALIDATOR_TIMEOUT_SECONDS = 120
LAMBDA_VPC_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
HTTPS_PORT = 443


def restore_metadata_overrides(
    resource_type: str, subnet_group: str, security_group_id: pulumi.Input[str], key_arn: pulumi.Input[str]
) -> dict[str, pulumi.Input[str]]:
    """What restore testing must not infer: where a database lands, how a bucket is encrypted.

    catalogue: backup.restore-testing-inferred-metadata
    """
    if resource_type == "RDS":
        return {
            "dbSubnetGroupName": subnet_group,
            # List-valued overrides are JSON arrays in a string.
            "vpcSecurityGroupIds": pulumi.Output.json_dumps([security_group_id]),
        }
    # catalogue: backup.s3-restore-encryption-type-value (the validator checks what it produced)
    return {"encryptionType": "SSE-KMS", "kmsKey": key_arn}


class RestoreTestingArgs(TypedDict):
    config: PlatformConfig
    role: str
    vault_arn: pulumi.Input[str]
    key_arn: pulumi.Input[str]
    restore_role_arn: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    """Where the validator runs: the application subnets, which reach the data subnets and AWS's APIs."""
    database_security_group_id: pulumi.Input[str]
    global_provider: aws.Provider
    """Where IAM resources are declared (components/providers.py: the DR region's provider)."""


class RestoreTesting(pulumi.ComponentResource):
    """Takes its region from the provider the caller passes in `opts`."""

    def __init__(self, name: str, args: RestoreTestingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:data:RestoreTesting", name, None, opts)
        cfg, role = args["config"], args["role"]
        region = cfg.region_of(role)
        settings = cfg.restore_testing
        child = pulumi.ResourceOptions(parent=self)

        # catalogue: backup.restore-testing-plan-limits (name: letters, digits, underscores; 50 at most)
        self.plan = aws.backup.RestoreTestingPlan(
            f"{name}-plan",
            name=restore_testing_plan_name(cfg, role),
            schedule_expression=settings.schedule,
            start_window_hours=START_WINDOW_HOURS,
            recovery_point_selection=aws.backup.RestoreTestingPlanRecoveryPointSelectionArgs(
                algorithm="LATEST_WITHIN_WINDOW",
                # The region's vault: its own backups and the other region's copies.
                include_vaults=[args["vault_arn"]],
                recovery_point_types=["SNAPSHOT"],
                selection_window_days=SELECTION_WINDOW_DAYS,
            ),
            opts=child,
        )
        for resource_type in settings.resource_types:
            aws.backup.RestoreTestingSelection(
                f"{name}-{resource_type.lower()}",
                name=f"{resource_type.lower()}_latest",
                restore_testing_plan_name=self.plan.name,
                protected_resource_type=resource_type,
                # Every protected resource of the type with a recovery point in the vault.
                protected_resource_arns=["*"],
                iam_role_arn=args["restore_role_arn"],
                restore_metadata_overrides=restore_metadata_overrides(
                    resource_type,
                    db_subnet_group_name(cfg, role),
                    args["database_security_group_id"],
                    args["key_arn"],
                ),
                # catalogue: backup.restore-testing-validation-window
                validation_window_hours=settings.validation_window_hours,
                opts=child,
            )

        self.validator = self._validator(name, cfg, role, args)
        rule = aws.cloudwatch.EventRule(
            f"{name}-jobs",
            name=physical_name(cfg, region, "restore-test-jobs"),
            description=f"Restore jobs of {restore_testing_plan_name(cfg, role)} that ended: validate and count them",
            # catalogue: backup.restore-job-state-change-event
            event_pattern=pulumi.Output.json_dumps(
                {
                    "source": ["aws.backup"],
                    "detail-type": ["Restore Job State Change"],
                    "detail": {
                        "restoreTestingPlanArn": [self.plan.arn],
                        "status": ["COMPLETED", "FAILED", "ABORTED"],
                    },
                }
            ),
            opts=child,
        )
        permission = aws.lambda_.Permission(
            f"{name}-invoke",
            action="lambda:InvokeFunction",
            function=self.validator.name,
            principal="events.amazonaws.com",
            source_arn=rule.arn,
            opts=child,
        )
        aws.cloudwatch.EventTarget(
            f"{name}-validator",
            rule=rule.name,
            arn=self.validator.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[permission]),
        )
        self.summary = {
            "plan": self.plan.name,
            "planArn": self.plan.arn,
            "validator": self.validator.name,
            "resourceTypes": list(settings.resource_types),
        }
        self.register_outputs({"summary": self.summary})

    def _validator(self, name: str, cfg: PlatformConfig, role: str, args: RestoreTestingArgs) -> aws.lambda_.Function:
        region = cfg.region_of(role)
        child = pulumi.ResourceOptions(parent=self)
        function_name = restore_validator_name(cfg, role)
        in_global = pulumi.ResourceOptions(parent=self, provider=args["global_provider"])
        execution_role = aws.iam.Role(
            f"{name}-validator",
            assume_role_policy=instance_trust("lambda.amazonaws.com"),
            permissions_boundary=role_boundary(account_of(args["vault_arn"])),
            opts=in_global,
        )
        # Network interfaces in the VPC, and the function's own log group.
        vpc_access = aws.iam.RolePolicyAttachment(
            f"{name}-validator-vpc", role=execution_role.name, policy_arn=LAMBDA_VPC_POLICY, opts=in_global
        )
        restored = f"{RESTORE_TEST_TAG}-*"
        permissions = aws.iam.RolePolicy(
            f"{name}-validator",
            role=execution_role.id,
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "ReadAndReportRestoreJobs",
                            "Effect": "Allow",
                            "Action": ["backup:DescribeRestoreJob", "backup:PutRestoreValidationResult"],
                            "Resource": "*",
                            "Condition": {"StringEquals": {"aws:RequestedRegion": region}},
                        },
                        {
                            "Sid": "ReadRestoredDatabases",
                            "Effect": "Allow",
                            "Action": "rds:DescribeDBInstances",
                            "Resource": f"arn:aws:rds:{region}:*:db:{restored}",
                        },
                        {
                            "Sid": "ReadRestoredBuckets",
                            "Effect": "Allow",
                            "Action": ["s3:GetEncryptionConfiguration", "s3:ListBucket"],
                            "Resource": f"arn:aws:s3:::{restored}",
                        },
                        {
                            "Sid": "CountResults",
                            "Effect": "Allow",
                            "Action": "cloudwatch:PutMetricData",
                            "Resource": "*",
                            "Condition": {"StringEquals": {"cloudwatch:namespace": METRIC_NAMESPACE}},
                        },
                        lambda_log_statement(region, function_name),
                    ],
                }
            ),
            opts=in_global,
        )
        logs = lambda_log_group(f"{name}-validator", function_name, cfg.log_group_retention_days, child)
        # Only the egress rules below: the provider revokes AWS's allow-all egress on creation.
        # catalogue: pulumi-aws.security-group-revokes-default-egress
        security_group = aws.ec2.SecurityGroup(
            f"{name}-validator",
            vpc_id=args["vpc_id"],
            description="restore-test validator: out to the restored database and AWS APIs only",
            opts=child,
        )
        for purpose, port, cidr in (
            ("database", POSTGRES_PORT, cfg.regions[role].vpc_cidr),
            ("aws-apis", HTTPS_PORT, "0.0.0.0/0"),
        ):
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-validator-{purpose}",
                security_group_id=security_group.id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                cidr_ipv4=cidr,
                description=f"restore-test validator to {purpose}",
                opts=child,
            )
        return aws.lambda_.Function(
            f"{name}-validator",
            name=function_name,
            description="Validates AWS Backup restore tests and reports the result to the restore job",
            runtime=RUNTIME,
            handler="restore_validation.handler",
            code=pulumi.AssetArchive({"restore_validation.py": pulumi.FileAsset(str(HANDLER_SOURCE))}),
            role=execution_role.arn,
            timeout=VALIDATOR_TIMEOUT_SECONDS,
            memory_size=256,
            vpc_config=aws.lambda_.FunctionVpcConfigArgs(
                subnet_ids=list(args["subnet_ids"]), security_group_ids=[security_group.id]
            ),
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    "EXPECTED_KMS_KEY_ARN": args["key_arn"],
                    "MAX_RECOVERY_POINT_AGE_HOURS": str(int(MAX_RECOVERY_POINT_AGE.total_seconds() // 3600)),
                    "METRIC_NAMESPACE": METRIC_NAMESPACE,
                    "RESTORE_TESTING_PLAN": restore_testing_plan_name(cfg, role),
                }
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[vpc_access, permissions, logs]),
        )
