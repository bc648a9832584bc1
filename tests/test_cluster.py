"""EKS per region: node group sizes per DR state, the cluster's security settings, add-ons and providers."""

from __future__ import annotations

import functools
import json

import pytest

from automation.evaluate import Evaluation, evaluate_program
from components.cluster import CONTROL_PLANE_LOG_TYPES, POOL_LABEL, aws_partition
from components.config import ConfigError, parse_config
from components.naming import cluster_name, monitoring_node_group_name, node_group_name
from tests.conftest import STATE_OVERRIDES, evaluate_state, prod_config

CLUSTER = "aws:eks/cluster:Cluster"
NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
ADDON = "aws:eks/addon:Addon"
ADMIN_ARN = "arn:aws:iam::123456789012:role/platform-admins"

# Which size each region's node group has, per state (see docs/cache-and-compute.md).
EXPECTED_SIZES = {
    "steady": {"primary": "full", "dr": "standby"},
    "failed-over": {"primary": "full", "dr": "full"},
    "resyncing": {"primary": "standby", "dr": "full"},
    "steady-after-failback": {"primary": "full", "dr": "standby"},
}


RUNNER_EGRESS = "203.0.113.10/32"
RUNNER_NETWORK = "10.30.0.0/24"


@functools.cache
def _with_admins_and_public_endpoint() -> Evaluation:
    return evaluate_program(
        prod_config(
            eksAdminPrincipalArns=json.dumps([ADMIN_ARN]),
            eksPublicEndpoint="true",
            eksPublicAccessCidrs=json.dumps([RUNNER_EGRESS]),
            eksPrivateAccessCidrs=json.dumps([RUNNER_NETWORK]),
        )
    )


@pytest.mark.parametrize("state", list(EXPECTED_SIZES))
def test_node_group_sizes_follow_the_dr_state(state):
    evaluation = evaluate_state(state)
    cfg = evaluation.config
    assert cfg.node_group_full != cfg.node_group_standby
    for role, kind in EXPECTED_SIZES[state].items():
        size = cfg.node_group_full if kind == "full" else cfg.node_group_standby
        region = cfg.region_of(role)
        group = evaluation.one(NODE_GROUP, f"eks-{role}-nodes")
        assert group.region == region
        assert group.inputs["nodeGroupName"] == node_group_name(cfg, role)
        assert group.inputs["scalingConfig"] == {"minSize": size.min, "desiredSize": size.desired, "maxSize": size.max}
        assert evaluation.outputs["clusters"][region] == {
            "name": cluster_name(cfg, role),
            "nodeGroup": node_group_name(cfg, role),
            "minSize": size.min,
            "desiredSize": size.desired,
            "maxSize": size.max,
            "monitoringNodeGroup": monitoring_node_group_name(cfg, role),
        }


def _compute_of(evaluation: Evaluation, role: str) -> dict[str, tuple]:
    """The role's cluster component and everything in it, IAM roles included."""
    return {
        r.urn: (r.type, r.inputs, r.region, r.protect, r.ignore_changes)
        for r in evaluation.resources
        if r.name == f"eks-{role}" or r.name.startswith(f"eks-{role}-")
    }


def test_failover_leaves_every_primary_region_compute_declaration_as_in_steady(steady, failed_over):
    baseline = _compute_of(steady, "primary")
    assert {CLUSTER, NODE_GROUP, "pulumi:providers:kubernetes"} <= {declared[0] for declared in baseline.values()}
    assert _compute_of(failed_over, "primary") == baseline
    assert _compute_of(failed_over, "dr") != _compute_of(steady, "dr")  # the DR node group scales up


def test_clusters_keep_their_urns_in_every_state(steady):
    urns = {r.urn for r in steady.resources if r.type in (CLUSTER, NODE_GROUP, ADDON)}
    for state in STATE_OVERRIDES:
        assert {r.urn for r in evaluate_state(state).resources if r.type in (CLUSTER, NODE_GROUP, ADDON)} == urns


def test_cluster_encrypts_secrets_with_its_regions_key_behind_an_allow_listed_endpoint(state_eval):
    cfg = state_eval.config
    for role in ("primary", "dr"):
        region = cfg.region_of(role)
        (cluster,) = state_eval.of_type(CLUSTER, region)
        inputs = cluster.inputs
        assert inputs["name"] == cluster_name(cfg, role)
        assert inputs["version"] == cfg.eks_version
        assert inputs["encryptionConfig"] == {
            "resources": ["secrets"],
            "provider": {"keyArn": state_eval.outputs["kmsKeys"][region]},
        }
        assert inputs["vpcConfig"]["endpointPrivateAccess"] is True
        # Public, from the prod stack's allow-list only (catalogue: eks.public-endpoint-open-by-default).
        assert inputs["vpcConfig"]["endpointPublicAccess"] is True
        assert inputs["vpcConfig"]["publicAccessCidrs"] == list(cfg.eks_public_access_cidrs)
        assert "0.0.0.0/0" not in inputs["vpcConfig"]["publicAccessCidrs"]
        assert all(f"network-{role}-app-" in subnet for subnet in inputs["vpcConfig"]["subnetIds"])
        assert inputs["enabledClusterLogTypes"] == CONTROL_PLANE_LOG_TYPES
        assert inputs["accessConfig"]["authenticationMode"] == "API"
        assert cluster.protect and inputs["deletionProtection"] is True
        (logs,) = [
            r
            for r in state_eval.of_type("aws:cloudwatch/logGroup:LogGroup", region)
            if r.name == f"eks-{role}-control-plane-logs"
        ]
        assert logs.inputs["name"] == f"/aws/eks/{cluster_name(cfg, role)}/cluster"


def test_public_endpoint_and_admin_access_entries_come_from_config():
    """catalogue: eks.public-endpoint-open-by-default"""
    evaluation = _with_admins_and_public_endpoint()
    for region in evaluation.regions():
        (cluster,) = evaluation.of_type(CLUSTER, region)
        assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is True
        assert cluster.inputs["vpcConfig"]["publicAccessCidrs"] == [RUNNER_EGRESS]
        (entry,) = evaluation.of_type("aws:eks/accessEntry:AccessEntry", region)
        assert entry.inputs["principalArn"] == ADMIN_ARN
        (association,) = evaluation.of_type("aws:eks/accessPolicyAssociation:AccessPolicyAssociation", region)
        assert association.inputs["policyArn"].endswith(":cluster-access-policy/AmazonEKSClusterAdminPolicy")
        assert association.inputs["accessScope"] == {"type": "cluster"}


def test_connected_networks_reach_the_private_endpoint_through_the_cluster_security_group():
    """catalogue: eks.private-endpoint-needs-cluster-security-group-rule"""
    evaluation = _with_admins_and_public_endpoint()
    for role in ("primary", "dr"):
        (rule,) = [
            r
            for r in evaluation.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
            if r.name.startswith(f"eks-{role}-api-from-")
        ]
        assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["cidrIpv4"]) == (443, 443, RUNNER_NETWORK)
        # The group EKS creates for the control plane (an output of the cluster), not a group of ours.
        assert any(dependency.endswith(f"::eks-{role}-cluster") for dependency in rule.dependencies)


def test_a_private_only_api_is_reached_from_inside_the_vpc_only():
    evaluation = evaluate_program(prod_config(eksPublicEndpoint="false", eksPublicAccessCidrs="[]"))
    assert not [r for r in evaluation.resources if "-api-from-" in r.name]
    for cluster in evaluation.of_type(CLUSTER):
        assert cluster.inputs["vpcConfig"]["endpointPublicAccess"] is False
        assert "publicAccessCidrs" not in cluster.inputs["vpcConfig"]


@pytest.mark.parametrize("state", list(EXPECTED_SIZES))
def test_monitoring_has_a_fixed_node_in_one_zone_whatever_the_state(state):
    """catalogue: ebs.volume-in-one-availability-zone"""
    evaluation = evaluate_state(state)
    cfg = evaluation.config
    for role in ("primary", "dr"):
        group = evaluation.one(NODE_GROUP, f"eks-{role}-monitoring-nodes")
        assert group.inputs["nodeGroupName"] == monitoring_node_group_name(cfg, role)
        # One subnet, the first zone's: a replacement node comes up where the volumes are.
        assert group.inputs["subnetIds"] == [f"network-{role}-app-0-{_subnet_digest(evaluation, role)}"]
        assert group.inputs["scalingConfig"] == {"minSize": 1, "desiredSize": 1, "maxSize": 2}
        assert group.inputs["labels"] == {POOL_LABEL: "monitoring"}
        assert evaluation.one(NODE_GROUP, f"eks-{role}-nodes").inputs["labels"] == {POOL_LABEL: "app"}


def _subnet_digest(evaluation: Evaluation, role: str) -> str:
    subnet = evaluation.one("aws:ec2/subnet:Subnet", f"network-{role}-app-0")
    app_group = evaluation.one(NODE_GROUP, f"eks-{role}-nodes")
    (first,) = [s for s in app_group.inputs["subnetIds"] if s.startswith(f"{subnet.name}-")]
    return first.rsplit("-", 1)[1]


def test_admin_principals_must_be_iam_arns():
    with pytest.raises(ConfigError, match="eksAdminPrincipalArns"):
        parse_config(prod_config(eksAdminPrincipalArns='["platform-admins"]'))


def _attached(evaluation: Evaluation, prefix: str) -> set[str]:
    return {
        r.inputs["policyArn"].rsplit("/", 1)[-1]
        for r in evaluation.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.name.startswith(prefix)
    }


def _trust(evaluation: Evaluation, role_name: str) -> dict:
    (statement,) = json.loads(evaluation.one("aws:iam/role:Role", role_name).inputs["assumeRolePolicy"])["Statement"]
    return statement


def test_the_node_role_carries_what_the_kubelet_needs_and_not_the_cnis_policy(steady):
    """catalogue: eks.cni-role-off-the-node"""
    for role in ("primary", "dr"):
        assert _attached(steady, f"eks-{role}-node-") == {
            "AmazonEKSWorkerNodePolicy",
            "AmazonEC2ContainerRegistryReadOnly",
        }
        assert _trust(steady, f"eks-{role}-node-role")["Principal"] == {"Service": "ec2.amazonaws.com"}


def test_both_node_groups_require_imdsv2_with_one_hop_so_pods_cannot_reach_the_node_role(steady):
    """catalogue: ec2.imds-hop-limit
    catalogue: eks.node-group-launch-template-rules (nothing the node group sets itself)"""
    for role in ("primary", "dr"):
        region = steady.config.region_of(role)
        (template,) = steady.of_type("aws:ec2/launchTemplate:LaunchTemplate", region)
        assert template.inputs["metadataOptions"] == {
            "httpEndpoint": "enabled",
            "httpTokens": "required",
            "httpPutResponseHopLimit": 1,
            "instanceMetadataTags": "disabled",
        }
        # Everything else a launch template may carry stays the node group's (EKS refuses some of it there).
        assert not {"iamInstanceProfile", "networkInterfaces", "instanceType", "imageId"} & set(template.inputs)
        for name in (f"eks-{role}-nodes", f"eks-{role}-monitoring-nodes"):
            launch = steady.one(NODE_GROUP, name).inputs["launchTemplate"]
            assert launch["id"].startswith(template.inputs["name"]) and launch["version"] == "1"


def test_the_launch_template_is_the_same_in_every_state_so_no_transition_rolls_the_nodes():
    templates = {
        state: {r.urn: r.inputs for r in evaluate_state(state).of_type("aws:ec2/launchTemplate:LaunchTemplate")}
        for state in EXPECTED_SIZES
    }
    assert all(inputs == templates["steady"] for inputs in templates.values())


def test_the_vpc_cni_has_its_own_pod_identity_role_with_the_cni_policy(steady):
    """catalogue: eks.pod-identity-session-tags"""
    for role in ("primary", "dr"):
        region = steady.config.region_of(role)
        addons = {a.inputs["addonName"]: a for a in steady.of_type(ADDON, region)}
        (association,) = addons["vpc-cni"].inputs["podIdentityAssociations"]
        assert association["serviceAccount"] == "aws-node"
        assert association["roleArn"].endswith(f"eks-{role}-vpc-cni-role")
        assert _attached(steady, f"eks-{role}-vpc-cni-") == {"AmazonEKS_CNI_Policy"}
        # The agent that hands the CNI its credentials is there first.
        agent = addons["eks-pod-identity-agent"]
        assert agent.urn in addons["vpc-cni"].dependencies


def test_pod_identity_roles_trust_one_service_account_of_one_namespace_of_one_cluster(steady):
    """catalogue: eks.pod-identity-session-tags"""
    for role in ("primary", "dr"):
        (cluster,) = steady.of_type(CLUSTER, steady.config.region_of(role))
        cluster_arn = f"arn:aws:eks:{cluster.region}:123456789012:{cluster.inputs['name']}"
        for purpose, account in (("vpc-cni", "aws-node"), ("ebs-csi", "ebs-csi-controller-sa")):
            trust = _trust(steady, f"eks-{role}-{purpose}-role")
            assert trust["Principal"] == {"Service": "pods.eks.amazonaws.com"}
            assert set(trust["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
            assert trust["Condition"] == {
                "StringEquals": {
                    "aws:RequestTag/eks-cluster-arn": cluster_arn,
                    "aws:RequestTag/kubernetes-namespace": "kube-system",
                    "aws:RequestTag/kubernetes-service-account": account,
                }
            }


def test_the_cluster_role_trusts_eks_for_this_cluster_of_this_account_only(steady):
    """catalogue: eks.cluster-role-source-conditions"""
    for role in ("primary", "dr"):
        (cluster,) = steady.of_type(CLUSTER, steady.config.region_of(role))
        trust = _trust(steady, f"eks-{role}-cluster-role")
        assert trust["Principal"] == {"Service": "eks.amazonaws.com"}
        assert trust["Condition"] == {
            "StringEquals": {"aws:SourceAccount": "123456789012"},
            "ArnLike": {"aws:SourceArn": f"arn:aws:eks:{cluster.region}:123456789012:cluster/{cluster.inputs['name']}"},
        }


def test_each_cluster_has_the_addons_and_an_ebs_csi_driver_with_pod_identity(steady):
    """catalogue: kms.via-service-condition"""
    for role in ("primary", "dr"):
        region = steady.config.region_of(role)
        addons = {a.inputs["addonName"]: a for a in steady.of_type(ADDON, region)}
        assert set(addons) == {"vpc-cni", "kube-proxy", "coredns", "eks-pod-identity-agent", "aws-ebs-csi-driver"}
        (association,) = addons["aws-ebs-csi-driver"].inputs["podIdentityAssociations"]
        assert association["serviceAccount"] == "ebs-csi-controller-sa"
        assert association["roleArn"].endswith(f"eks-{role}-ebs-csi-role")
        kms = json.loads(steady.one("aws:iam/rolePolicy:RolePolicy", f"eks-{role}-ebs-csi-kms").inputs["policy"])
        assert {s["Resource"] for s in kms["Statement"]} == {steady.outputs["kmsKeys"][region]}
        # The key only through EC2 (volumes), never directly with the driver's credentials.
        for statement in kms["Statement"]:
            assert statement["Condition"]["StringEquals"] == {"kms:ViaService": f"ec2.{region}.amazonaws.com"}


def test_a_kubernetes_provider_per_cluster_authenticates_with_aws_eks_get_token(steady):
    providers = steady.of_type("pulumi:providers:kubernetes")
    assert sorted(p.region for p in providers) == sorted(steady.regions())
    for provider in providers:
        role = steady.config.role_of(provider.region)
        (cluster,) = steady.of_type(CLUSTER, provider.region)
        kubeconfig = json.loads(provider.inputs["kubeconfig"])
        assert kubeconfig["clusters"][0]["cluster"]["server"].endswith(f".{provider.region}.eks.amazonaws.com")
        assert provider.parent.endswith(f"dr-platform:compute:Cluster::eks-{role}")
        assert cluster.parent == provider.parent
        user = kubeconfig["users"][0]["user"]
        assert "token" not in user
        assert user["exec"]["command"] == "aws"
        name, region = cluster.inputs["name"], provider.region
        assert user["exec"]["args"] == [
            "eks",
            "get-token",
            "--cluster-name",
            name,
            "--region",
            region,
            "--output",
            "json",
        ]


@pytest.mark.parametrize(
    ("region", "partition"), [("us-east-1", "aws"), ("us-gov-west-1", "aws-us-gov"), ("cn-north-1", "aws-cn")]
)
def test_managed_policy_arns_use_the_regions_partition(region, partition):
    assert aws_partition(region) == partition


def test_a_pilot_light_standby_declares_no_dr_node_and_a_single_az_replica() -> None:
    evaluation = evaluate_program(prod_config(standbyProfile="pilot-light"))
    dr = evaluation.config.dr_region
    (app_nodes,) = [
        r for r in evaluation.of_type("aws:eks/nodeGroup:NodeGroup", region=dr) if "monitoring" not in r.name
    ]
    assert app_nodes.inputs["scalingConfig"]["desiredSize"] == 0
    (replica,) = [r for r in evaluation.of_type("aws:rds/instance:Instance", region=dr)]
    assert replica.inputs["replicateSourceDb"] and replica.inputs["multiAz"] is False


def test_only_the_monitoring_stack_and_node_daemons_run_on_the_monitoring_node(steady):
    """catalogue: eks.node-group-taint-effects, eks.addon-daemonsets-tolerate-taints"""
    from components.monitoring import chart_values

    for role in ("primary", "dr"):
        monitoring = steady.one(NODE_GROUP, f"eks-{role}-monitoring-nodes")
        assert monitoring.inputs["taints"] == [{"key": POOL_LABEL, "value": "monitoring", "effect": "NO_SCHEDULE"}]
        assert "taints" not in steady.one(NODE_GROUP, f"eks-{role}-nodes").inputs
        csi = steady.one(ADDON, f"eks-{role}-aws-ebs-csi-driver")
        assert json.loads(csi.inputs["configurationValues"]) == {"node": {"tolerateAllTaints": True}}
    values = chart_values(steady.config, "dr", "arn:aws:sns:us-west-2:1:alerts", "arn:aws:sns:us-west-2:1:beat")
    toleration = [{"key": POOL_LABEL, "value": "monitoring", "effect": "NoSchedule", "operator": "Equal"}]
    for pod_spec in (
        values["prometheus"]["prometheusSpec"],
        values["alertmanager"]["alertmanagerSpec"],
        values["grafana"],
    ):
        assert pod_spec["tolerations"] == toleration
        assert pod_spec["nodeSelector"] == {POOL_LABEL: "monitoring"}
