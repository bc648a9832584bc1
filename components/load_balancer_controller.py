"""The AWS Load Balancer Controller in one region's cluster: it fills the entry point's target group with pods.

The program declares each region's ALB and target group (components/traffic.py);
applications bind their Service to it with a TargetGroupBinding, which this
controller reconciles: it registers the Service's pod IPs in the target group
and keeps them current. Without it the target group stays empty, every target
health check fails and the endpoint alarms page from the first deploy.

Installed from AWS's Helm chart (eks-charts) at a pinned version whose values
keys tests/test_chart_values.py checks, with AWS's documented IAM policy
(`controller_policy`) through EKS Pod Identity. A pod cannot reach the instance
metadata service here (components/cluster.py: hop limit 1), so the chart is
told the region and the VPC instead of discovering them.
"""

from __future__ import annotations

from typing import Any, TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.iam import pod_identity_role

CHART = "aws-load-balancer-controller"
CHART_VERSION = "3.5.0"
"""eks-charts tag v0.0.242: the controller v3.5.0, whose documented IAM policy `controller_policy` is."""
CHART_REPOSITORY = "https://aws.github.io/eks-charts"
RELEASE_NAME = "aws-load-balancer-controller"
NAMESPACE = "kube-system"
SERVICE_ACCOUNT = "aws-load-balancer-controller"
CLUSTER_TAG = "elbv2.k8s.aws/cluster"
"""The tag the controller puts on what it creates; the policy lets it change or delete only what carries it."""

_ELB = "elasticloadbalancing"
_TAGGED_ELB_RESOURCES = [
    f"arn:aws:{_ELB}:*:*:targetgroup/*/*",
    f"arn:aws:{_ELB}:*:*:loadbalancer/net/*/*",
    f"arn:aws:{_ELB}:*:*:loadbalancer/app/*/*",
]
_SECURITY_GROUPS = "arn:aws:ec2:*:*:security-group/*"
# Condition blocks of the documented policy: a tag the request sets, a tag the resource carries, a tag
# the request leaves alone on a resource that carries it.
_REQUEST_TAGGED = {"Null": {f"aws:RequestTag/{CLUSTER_TAG}": "false"}}
_RESOURCE_TAGGED = {"Null": {f"aws:ResourceTag/{CLUSTER_TAG}": "false"}}
_TAG_KEPT = {"Null": {f"aws:RequestTag/{CLUSTER_TAG}": "true", f"aws:ResourceTag/{CLUSTER_TAG}": "false"}}


def _actions(service: str, *names: str) -> list[str]:
    return [f"{service}:{name}" for name in names]


def _allow(actions: list[str], resource: str | list[str] = "*", condition: dict[str, Any] | None = None) -> dict:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": actions, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def controller_policy() -> dict[str, Any]:
    """The controller's IAM policy as its project documents it for v3.5.0 (docs/install/iam_policy.json).

    catalogue: elb.load-balancer-controller-iam-policy
    """
    waf = ("GetWebACL", "GetWebACLForResource", "AssociateWebACL", "DisassociateWebACL")
    return {
        "Version": "2012-10-17",
        "Statement": [
            _allow(
                ["iam:CreateServiceLinkedRole"],
                condition={"StringEquals": {"iam:AWSServiceName": f"{_ELB}.amazonaws.com"}},
            ),
            _allow(
                _actions(
                    "ec2",
                    "DescribeAccountAttributes",
                    "DescribeAddresses",
                    "DescribeAvailabilityZones",
                    "DescribeInternetGateways",
                    "DescribeVpcs",
                    "DescribeVpcPeeringConnections",
                    "DescribeSubnets",
                    "DescribeSecurityGroups",
                    "DescribeInstances",
                    "DescribeNetworkInterfaces",
                    "DescribeTags",
                    "GetCoipPoolUsage",
                    "DescribeCoipPools",
                    "GetSecurityGroupsForVpc",
                    "DescribeIpamPools",
                    "DescribeRouteTables",
                )
                + _actions(
                    _ELB,
                    "DescribeLoadBalancers",
                    "DescribeLoadBalancerAttributes",
                    "DescribeListeners",
                    "DescribeListenerCertificates",
                    "DescribeSSLPolicies",
                    "DescribeRules",
                    "DescribeTargetGroups",
                    "DescribeTargetGroupAttributes",
                    "DescribeTargetHealth",
                    "DescribeTags",
                    "DescribeTrustStores",
                    "DescribeListenerAttributes",
                    "DescribeCapacityReservation",
                )
            ),
            _allow(
                _actions("cognito-idp", "DescribeUserPoolClient")
                + _actions("acm", "ListCertificates", "DescribeCertificate")
                + _actions("iam", "ListServerCertificates", "GetServerCertificate")
                + _actions("waf-regional", *waf)
                + _actions("wafv2", *waf)
                + _actions(
                    "shield", "GetSubscriptionState", "DescribeProtection", "CreateProtection", "DeleteProtection"
                )
            ),
            _allow(_actions("ec2", "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress")),
            _allow(_actions("ec2", "CreateSecurityGroup")),
            _allow(
                _actions("ec2", "CreateTags"),
                _SECURITY_GROUPS,
                {"StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"}, **_REQUEST_TAGGED},
            ),
            _allow(_actions("ec2", "CreateTags", "DeleteTags"), _SECURITY_GROUPS, _TAG_KEPT),
            _allow(
                _actions("ec2", "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress", "DeleteSecurityGroup"),
                condition=_RESOURCE_TAGGED,
            ),
            _allow(_actions(_ELB, "CreateLoadBalancer", "CreateTargetGroup"), condition=_REQUEST_TAGGED),
            _allow(_actions(_ELB, "CreateListener", "DeleteListener", "CreateRule", "DeleteRule")),
            _allow(_actions(_ELB, "AddTags", "RemoveTags"), _TAGGED_ELB_RESOURCES, _TAG_KEPT),
            _allow(
                _actions(_ELB, "AddTags", "RemoveTags"),
                [
                    f"arn:aws:{_ELB}:*:*:{kind}/{lb}/*/*/*"
                    for kind in ("listener", "listener-rule")
                    for lb in ("net", "app")
                ],
            ),
            _allow(
                _actions(
                    _ELB,
                    "ModifyLoadBalancerAttributes",
                    "SetIpAddressType",
                    "SetSecurityGroups",
                    "SetSubnets",
                    "DeleteLoadBalancer",
                    "ModifyTargetGroup",
                    "ModifyTargetGroupAttributes",
                    "DeleteTargetGroup",
                    "ModifyListenerAttributes",
                    "ModifyCapacityReservation",
                    "ModifyIpPools",
                ),
                condition=_RESOURCE_TAGGED,
            ),
            _allow(
                _actions(_ELB, "AddTags"),
                _TAGGED_ELB_RESOURCES,
                {
                    "StringEquals": {f"{_ELB}:CreateAction": ["CreateTargetGroup", "CreateLoadBalancer"]},
                    **_REQUEST_TAGGED,
                },
            ),
            # What a TargetGroupBinding needs on the program's target group: registering the pods.
            _allow(_actions(_ELB, "RegisterTargets", "DeregisterTargets"), f"arn:aws:{_ELB}:*:*:targetgroup/*/*"),
            _allow(
                _actions(
                    _ELB,
                    "SetWebAcl",
                    "ModifyListener",
                    "AddListenerCertificates",
                    "RemoveListenerCertificates",
                    "ModifyRule",
                    "SetRulePriorities",
                )
            ),
        ],
    }


def chart_values(cluster_name: pulumi.Input[str], region: str, vpc_id: pulumi.Input[str]) -> dict[str, Any]:
    """Values for the chart in one cluster: its name, and the region and VPC a pod cannot look up."""
    return {
        "clusterName": cluster_name,
        # catalogue: ec2.imds-hop-limit (no metadata service from a pod: say what it would have said)
        "region": region,
        "vpcId": vpc_id,
        "serviceAccount": {"create": True, "name": SERVICE_ACCOUNT},
    }


class LoadBalancerControllerArgs(TypedDict):
    region: str
    cluster_name: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    vpc_id: pulumi.Input[str]
    global_provider: aws.Provider
    """Where IAM resources are declared (components/providers.py: the DR region's provider)."""
    after: list[pulumi.Resource]
    """What the controller's pods need first: the nodes and the Pod Identity agent."""


class LoadBalancerController(pulumi.ComponentResource):
    """The chart and its Pod Identity role; the caller passes `providers=[kubernetes, region's aws]`."""

    def __init__(self, name: str, args: LoadBalancerControllerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:traffic:LoadBalancerController", name, None, opts)
        identity = pod_identity_role(
            name,
            parent=self,
            cluster_name=args["cluster_name"],
            cluster_arn=args["cluster_arn"],
            namespace=NAMESPACE,
            service_account=SERVICE_ACCOUNT,
            policy=pulumi.Output.json_dumps(controller_policy()),
            global_provider=args["global_provider"],
        )
        self.release = k8s.helm.v3.Release(
            f"{name}-release",
            name=RELEASE_NAME,
            chart=CHART,
            version=CHART_VERSION,
            repository_opts={"repo": CHART_REPOSITORY},
            namespace=NAMESPACE,
            values=chart_values(args["cluster_name"], args["region"], args["vpc_id"]),
            # Pod Identity credentials are injected when a pod is created: the association comes first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args["after"], *identity]),
        )
        self.register_outputs({"release": self.release.name})
