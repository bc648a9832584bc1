"""Trust policies: which service (or which pods) may assume a role, and on whose behalf.

A service principal alone trusts that service acting for anyone. Where the
service documents that it sends `aws:SourceAccount`/`aws:SourceArn` when it
assumes a role, the trust requires them (`documented=True`). Where it does not
say, a positive condition on a key the service leaves out would deny every
AssumeRole and break the feature silently, so the `...IfExists` operators apply
the same limits only when the keys arrive (catalogue: iam.source-keys-only-where-sent).

EKS Pod Identity passes the pod's cluster, namespace and service account as
session tags; its trusts require all three (catalogue: eks.pod-identity-session-tags).

Every role the program creates carries the bootstrap's permissions boundary
(`role_boundary`): the deploy role may create roles only with it, so no role it
creates can do what the deploy role itself is denied (bootstrap/iam.py).
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

ASSUME = "sts:AssumeRole"
POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"
PROGRAM_ROLE_BOUNDARY = "dr-platform-program-boundary"
"""The managed policy (created by the bootstrap stack) every role of the program carries as its boundary."""


def role_boundary(account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """The program's permissions boundary in `account_id`.

    catalogue: iam.permissions-boundary-condition-key
    """
    return pulumi.Output.concat("arn:aws:iam::", account_id, f":policy/{PROGRAM_ROLE_BOUNDARY}")


def account_of(arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """The account of a resource's ARN (for components that know an ARN of theirs, not the account)."""
    return pulumi.Output.from_input(arn).apply(lambda value: value.split(":")[4])


def service_trust(
    service: str,
    account_id: pulumi.Input[str],
    *,
    source_arn: pulumi.Input[str] | None = None,
    documented: bool,
) -> pulumi.Output[str]:
    """A trust for `service` acting for this account (and, with `source_arn`, for that resource only)."""
    equals, like = ("StringEquals", "ArnLike") if documented else ("StringEqualsIfExists", "ArnLikeIfExists")
    condition: dict[str, dict[str, pulumi.Input[str]]] = {equals: {"aws:SourceAccount": account_id}}
    if source_arn is not None:
        condition[like] = {"aws:SourceArn": source_arn}
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": ASSUME, "Condition": condition}
            ],
        }
    )


def instance_trust(service: str) -> str:
    """A trust for a service that runs our own code with the role (EC2 instances, Lambda functions).

    Nothing else can pass the role: iam:PassRole never crosses accounts, and these services send no
    source keys to condition on (catalogue: iam.source-keys-only-where-sent).
    """
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": ASSUME}],
        }
    )


def pod_identity_trust(cluster_arn: pulumi.Input[str], namespace: str, service_account: str) -> pulumi.Output[str]:
    """A role only pods of `service_account` in `namespace` on one cluster get through EKS Pod Identity.

    Without the conditions any Pod Identity association in the account could name the role.
    """
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
                    # catalogue: eks.pod-identity-session-tags (TagSession: the agent passes the tags)
                    "Action": [ASSUME, "sts:TagSession"],
                    "Condition": {
                        "StringEquals": {
                            "aws:RequestTag/eks-cluster-arn": cluster_arn,
                            "aws:RequestTag/kubernetes-namespace": namespace,
                            "aws:RequestTag/kubernetes-service-account": service_account,
                        }
                    },
                }
            ],
        }
    )


def kms_via_service(region: str, service: str) -> dict[str, dict[str, str]]:
    """A key used only through `service` in `region`, never called directly (catalogue: kms.via-service-condition)."""
    return {"StringEquals": {"kms:ViaService": f"{service}.{region}.amazonaws.com"}}


def pod_identity_role(
    prefix: str,
    *,
    parent: pulumi.Resource,
    cluster_name: pulumi.Input[str],
    cluster_arn: pulumi.Input[str],
    namespace: str,
    service_account: str,
    policy: pulumi.Input[str],
    global_provider: pulumi.ProviderResource,
) -> list[pulumi.Resource]:
    """A role only `service_account` in `namespace` of one cluster gets, through EKS Pod Identity.

    The role and its inline `policy` are declared through the global (DR region's) provider, like
    every IAM resource; the association in the cluster's region, through the parent's provider.
    Returns what pods must wait for: Pod Identity credentials are injected when a pod is created.
    Resources are named `<prefix>-role`, `<prefix>-policy` and `<prefix>-pod-identity`.
    """
    in_global = pulumi.ResourceOptions(parent=parent, provider=global_provider)
    role = aws.iam.Role(
        f"{prefix}-role",
        # catalogue: eks.pod-identity-session-tags
        assume_role_policy=pod_identity_trust(cluster_arn, namespace, service_account),
        permissions_boundary=role_boundary(account_of(cluster_arn)),
        opts=in_global,
    )
    role_policy = aws.iam.RolePolicy(f"{prefix}-policy", role=role.id, policy=policy, opts=in_global)
    association = aws.eks.PodIdentityAssociation(
        f"{prefix}-pod-identity",
        cluster_name=cluster_name,
        namespace=namespace,
        service_account=service_account,
        role_arn=role.arn,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return [role_policy, association]


def lambda_log_statement(region: str, function_name: str) -> dict[str, object]:
    """What a Lambda function's role needs to write its own logs (to the group `lambda_log_group` declares)."""
    return {
        "Sid": "WriteOwnLogs",
        "Effect": "Allow",
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": f"arn:aws:logs:{region}:*:log-group:/aws/lambda/{function_name}:*",
    }


def lambda_log_group(
    name: str, function_name: str, retention_days: int, opts: pulumi.ResourceOptions
) -> aws.cloudwatch.LogGroup:
    """The function's log group: Lambda would create it itself with no expiry; owning it sets the retention."""
    return aws.cloudwatch.LogGroup(
        name, name=f"/aws/lambda/{function_name}", retention_in_days=retention_days, opts=opts
    )
