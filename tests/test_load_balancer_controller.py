"""The AWS Load Balancer Controller in both clusters, so a TargetGroupBinding fills each region's target group.

catalogue: elb.load-balancer-controller-iam-policy
"""

from __future__ import annotations

import json

import pytest

from automation.evaluate import GLOBAL
from components.load_balancer_controller import CHART_VERSION, NAMESPACE, SERVICE_ACCOUNT, controller_policy
from tests.conftest import STATES, evaluate_state

RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.mark.parametrize("state", STATES)
def test_each_cluster_runs_the_controller_with_its_region_and_vpc(state):
    evaluation = evaluate_state(state)
    releases = {r.region: r for r in evaluation.of_type(RELEASE) if r.inputs["chart"] == "aws-load-balancer-controller"}
    assert set(releases) == set(evaluation.regions())
    for region, release in releases.items():
        assert release.inputs["version"] == CHART_VERSION == "3.5.0"
        assert release.inputs["repositoryOpts"] == {"repo": "https://aws.github.io/eks-charts"}
        values = release.inputs["values"]
        # No metadata service from a pod (hop limit 1): the chart is told what it would have looked up.
        assert values["region"] == region
        assert values["vpcId"] == evaluation.outputs["network"][region]["vpcId"]
        assert values["clusterName"] == evaluation.outputs["clusters"][region]["name"]
        assert values["serviceAccount"] == {"create": True, "name": SERVICE_ACCOUNT}


def test_the_controller_gets_the_documented_policy_through_pod_identity(steady):
    for role in ("primary", "dr"):
        region = steady.config.region_of(role)
        policy = json.loads(
            steady.one("aws:iam/rolePolicy:RolePolicy", f"lb-controller-{role}-policy").inputs["policy"]
        )
        assert policy == controller_policy()
        association = steady.one(
            "aws:eks/podIdentityAssociation:PodIdentityAssociation", f"lb-controller-{role}-pod-identity"
        )
        assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == (NAMESPACE, SERVICE_ACCOUNT)
        assert association.region == region
        role_resource = steady.one("aws:iam/role:Role", f"lb-controller-{role}-role")
        assert role_resource.region == GLOBAL
        trust = json.loads(role_resource.inputs["assumeRolePolicy"])["Statement"][0]["Condition"]["StringEquals"]
        assert trust["aws:RequestTag/kubernetes-service-account"] == SERVICE_ACCOUNT
        release = steady.one(RELEASE, f"lb-controller-{role}-release")
        assert association.urn in release.dependencies
        agent = steady.one("aws:eks/addon:Addon", f"eks-{role}-eks-pod-identity-agent")
        assert agent.urn in release.dependencies


def test_the_policy_lets_the_controller_register_targets_and_change_only_what_it_tagged():
    statements = controller_policy()["Statement"]
    assert len(statements) == 16
    register = next(s for s in statements if "elasticloadbalancing:RegisterTargets" in s["Action"])
    assert register["Resource"] == "arn:aws:elasticloadbalancing:*:*:targetgroup/*/*"
    deletes = next(s for s in statements if "elasticloadbalancing:DeleteTargetGroup" in s["Action"])
    assert deletes["Condition"] == {"Null": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "false"}}
