"""An EKS cluster per region, its managed node group, add-ons and Kubernetes provider.

The active region's node group runs at full size and the standby's at a
minimal size; `node_group_size` decides which from the DR state. The cluster
itself is identical in every state, so only the node group's scaling changes
when the platform fails over or back.

A second, fixed node group of one node in the region's first availability zone
carries the monitoring stack. Its volumes are zonal EBS volumes: on the
application node group (one standby node across three zones, shrunk again in
`resyncing`) a replacement node in another zone would leave Prometheus and
Alertmanager Pending, silently. Here a replacement always comes up in the zone
the volumes are in, and no DR transition resizes the group.

Who reaches the Kubernetes API: the private endpoint (always on) from the VPC
and from the networks in `eksPrivateAccessCidrs` (CI runners connected by
peering, Transit Gateway or VPN), and, if `eksPublicEndpoint`, the public
endpoint from the addresses in `eksPublicAccessCidrs` only.

What pods can reach in AWS: nothing of the node's. Both node groups launch from
a launch template that requires IMDSv2 with a response hop limit of 1, so a
pod (one network hop further than the node) gets no answer from the instance
metadata service and no node credentials; the node role carries no more than
the kubelet needs. The VPC CNI, the EBS CSI driver and the monitoring stack get
roles of their own through EKS Pod Identity, each trusted only for its service
account, namespace and cluster.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TypedDict

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.config import DrState, NodeGroupSize, PlatformConfig
from components.iam import instance_trust, kms_via_service, pod_identity_trust, role_boundary, service_trust

CONTROL_PLANE_LOG_TYPES = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
KUBERNETES_API_PORT = 443
POOL_LABEL = "dr-platform/pool"
"""Node label naming the pool: `app` (the scaled node group) or `monitoring` (the fixed one)."""
APP_POOL = "app"
MONITORING_POOL = "monitoring"
MONITORING_NODE_GROUP_SIZE = NodeGroupSize(min=1, desired=1, max=2)
"""One node; max 2 leaves room for the managed node group's rolling replacement."""
MONITORING_TAINT = {"key": POOL_LABEL, "value": MONITORING_POOL, "effect": "NoSchedule"}
"""Keeps every pod off the monitoring node but those that tolerate it (the monitoring stack) and the
DaemonSets every node runs (catalogue: eks.addon-daemonsets-tolerate-taints)."""

# Installed before any node joins: the agent that hands Pod Identity credentials
# out (the VPC CNI and the EBS CSI driver use it), the service proxy, and networking.
POD_IDENTITY_AGENT = "eks-pod-identity-agent"
VPC_CNI = "vpc-cni"
ADDON_NAMESPACE = "kube-system"
EBS_CSI_SERVICE_ACCOUNT = "ebs-csi-controller-sa"
VPC_CNI_SERVICE_ACCOUNT = "aws-node"
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryReadOnly")
"""The node role: the kubelet and the Pod Identity agent, image pulls. Not the CNI's policy: pods
could use it through the node, so the VPC CNI gets a role of its own (catalogue: eks.cni-role-off-the-node)."""
IMDS_HOP_LIMIT = 1
"""One hop: the node reaches the instance metadata service, a pod behind it does not (catalogue: ec2.imds-hop-limit)."""


def node_group_size(cfg: PlatformConfig, role: str) -> NodeGroupSize:
    """Full size where traffic runs; where it does not, what the standby profile says (`standbyProfile`).

    `failed-over` leaves the primary region's declaration as it was in steady
    (full): that region may be unreachable and the failover update does not
    touch it. `resyncing` shrinks it, since it is rebuilt as the standby.
    """
    if cfg.region_of(role) == cfg.active_region:
        return cfg.node_group_full
    if role == "primary" and cfg.dr_state is DrState.FAILED_OVER:
        return cfg.node_group_full
    return cfg.standby_node_group


def aws_partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


class ClusterArgs(TypedDict):
    region: str
    cluster_name: str
    node_group_name: str
    monitoring_node_group_name: str
    kubernetes_version: str
    public_endpoint: bool
    public_access_cidrs: Sequence[str]
    """Required with a public endpoint: EKS would otherwise open it to 0.0.0.0/0."""
    private_access_cidrs: Sequence[str]
    """Connected networks (CI runners) admitted to the private endpoint through the cluster security group."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Application subnets, one per availability zone, the first zone first."""
    kms_key_arn: pulumi.Input[str]
    instance_types: Sequence[str]
    size: NodeGroupSize
    admin_principal_arns: Sequence[str]
    log_retention_days: int
    account_id: pulumi.Input[str]
    """The owning account: the cluster role trusts EKS acting for this cluster of it only."""
    global_provider: aws.Provider
    """Where IAM resources are declared (components/providers.py: the DR region's provider)."""


class Cluster(pulumi.ComponentResource):
    """Takes its region from the provider the caller passes in `opts`."""

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:compute:Cluster", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Roles and their policies: IAM is global, declared through the DR region's provider.
        self._in_global = in_global = pulumi.ResourceOptions(parent=self, provider=args["global_provider"])
        region = args["region"]
        self._region = region
        partition = aws_partition(region)
        managed_policy = f"arn:{partition}:iam::aws:policy"

        cluster_arn = pulumi.Output.concat(
            f"arn:{partition}:eks:{region}:", args["account_id"], f":cluster/{args['cluster_name']}"
        )
        self._boundary = role_boundary(args["account_id"])
        # catalogue: eks.cluster-role-source-conditions
        cluster_role = self._role(
            name,
            "cluster",
            service_trust("eks.amazonaws.com", args["account_id"], source_arn=cluster_arn, documented=True),
        )
        cluster_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-cluster-policy",
                role=cluster_role.name,
                policy_arn=f"{managed_policy}/AmazonEKSClusterPolicy",
                opts=in_global,
            ),
            # EKS's envelope encryption of secrets; EKS documents no kms:ViaService for it.
            self._kms_policy(name, "cluster", cluster_role, args["kms_key_arn"], via=None, grants=False),
        ]

        # EKS would create this group itself with no expiry; owning it sets the retention.
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-control-plane-logs",
            name=f"/aws/eks/{args['cluster_name']}/cluster",
            # catalogue: cloudwatch.logs-retention-values (config allows CloudWatch's values only)
            retention_in_days=args["log_retention_days"],
            opts=child,
        )

        self.cluster = aws.eks.Cluster(
            f"{name}-cluster",
            name=args["cluster_name"],
            version=args["kubernetes_version"],
            role_arn=cluster_role.arn,
            vpc_config=aws.eks.ClusterVpcConfigArgs(
                subnet_ids=list(args["subnet_ids"]),
                endpoint_private_access=True,
                endpoint_public_access=args["public_endpoint"],
                # catalogue: eks.public-endpoint-open-by-default
                public_access_cidrs=list(args["public_access_cidrs"]) if args["public_endpoint"] else None,
            ),
            encryption_config=aws.eks.ClusterEncryptionConfigArgs(
                resources=["secrets"],
                provider=aws.eks.ClusterEncryptionConfigProviderArgs(key_arn=args["kms_key_arn"]),
            ),
            enabled_cluster_log_types=CONTROL_PLANE_LOG_TYPES,
            access_config=aws.eks.ClusterAccessConfigArgs(
                authentication_mode="API",
                # The identity that runs `pulumi up` administers the cluster, so the
                # Kubernetes provider below can deploy the monitoring stack.
                bootstrap_cluster_creator_admin_permissions=True,
            ),
            deletion_protection=True,
            opts=pulumi.ResourceOptions(parent=self, protect=True, depends_on=[*cluster_policies, log_group]),
        )

        # catalogue: eks.private-endpoint-needs-cluster-security-group-rule
        for cidr in args["private_access_cidrs"]:
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-api-from-{cidr.replace('/', '-')}",
                security_group_id=self.cluster.vpc_config.cluster_security_group_id,
                ip_protocol="tcp",
                from_port=KUBERNETES_API_PORT,
                to_port=KUBERNETES_API_PORT,
                cidr_ipv4=cidr,
                description="Kubernetes API from a connected network (CI runners, operators)",
                opts=child,
            )

        # catalogue: eks.creator-has-an-access-entry
        for principal_arn in args["admin_principal_arns"]:
            principal = principal_arn.rsplit(":", 1)[-1].replace("/", "-")
            entry = aws.eks.AccessEntry(
                f"{name}-admin-{principal}",
                cluster_name=self.cluster.name,
                principal_arn=principal_arn,
                type="STANDARD",
                opts=child,
            )
            aws.eks.AccessPolicyAssociation(
                f"{name}-admin-{principal}-policy",
                cluster_name=self.cluster.name,
                principal_arn=entry.principal_arn,
                policy_arn=f"arn:{partition}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                access_scope=aws.eks.AccessPolicyAssociationAccessScopeArgs(type="cluster"),
                opts=child,
            )

        node_role = self._role(name, "node", instance_trust("ec2.amazonaws.com"))
        node_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}", role=node_role.name, policy_arn=f"{managed_policy}/{policy}", opts=in_global
            )
            for policy in NODE_POLICIES
        ]

        # The agent first: the CNI's pods get their credentials through it.
        addons = {
            POD_IDENTITY_AGENT: self._addon(name, POD_IDENTITY_AGENT, child),
            "kube-proxy": self._addon(name, "kube-proxy", child),
        }
        cni_role = self._pod_identity_role(name, "vpc-cni", VPC_CNI_SERVICE_ACCOUNT)
        cni_policy = aws.iam.RolePolicyAttachment(
            f"{name}-vpc-cni-policy",
            role=cni_role.name,
            policy_arn=f"{managed_policy}/AmazonEKS_CNI_Policy",
            opts=in_global,
        )
        addons[VPC_CNI] = self._addon(
            name,
            VPC_CNI,
            pulumi.ResourceOptions(parent=self, depends_on=[addons[POD_IDENTITY_AGENT], cni_policy]),
            pod_identity_associations=[
                aws.eks.AddonPodIdentityAssociationArgs(role_arn=cni_role.arn, service_account=VPC_CNI_SERVICE_ACCOUNT)
            ],
        )

        # catalogue: ec2.imds-hop-limit
        # catalogue: eks.node-group-launch-template-rules (declared from the first node group on)
        launch_template = aws.ec2.LaunchTemplate(
            f"{name}-nodes",
            name=f"{args['node_group_name']}-lt",
            description="dr-platform EKS nodes: IMDSv2 only, not reachable from pods",
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                http_endpoint="enabled",
                http_tokens="required",
                http_put_response_hop_limit=IMDS_HOP_LIMIT,
                instance_metadata_tags="disabled",
            ),
            # A new version rolls the nodes; the default version is the one EKS would launch from otherwise.
            update_default_version=True,
            opts=child,
        )
        node_launch = aws.eks.NodeGroupLaunchTemplateArgs(id=launch_template.id, version=launch_template.latest_version)

        size = args["size"]
        self.node_group = aws.eks.NodeGroup(
            f"{name}-nodes",
            cluster_name=self.cluster.name,
            node_group_name=args["node_group_name"],
            node_role_arn=node_role.arn,
            subnet_ids=list(args["subnet_ids"]),
            instance_types=list(args["instance_types"]),
            capacity_type="ON_DEMAND",
            launch_template=node_launch,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=size.min, desired_size=size.desired, max_size=size.max
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels={POOL_LABEL: APP_POOL},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*node_policies, addons[VPC_CNI]]),
        )
        # catalogue: ebs.volume-in-one-availability-zone
        self.monitoring_node_group = aws.eks.NodeGroup(
            f"{name}-monitoring-nodes",
            cluster_name=self.cluster.name,
            node_group_name=args["monitoring_node_group_name"],
            node_role_arn=node_role.arn,
            subnet_ids=[args["subnet_ids"][0]],
            instance_types=list(args["instance_types"]),
            capacity_type="ON_DEMAND",
            launch_template=node_launch,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=MONITORING_NODE_GROUP_SIZE.min,
                desired_size=MONITORING_NODE_GROUP_SIZE.desired,
                max_size=MONITORING_NODE_GROUP_SIZE.max,
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels={POOL_LABEL: MONITORING_POOL},
            # Application pods would otherwise fill the node the monitoring stack's volumes are tied to.
            # catalogue: eks.node-group-taint-effects (the API spells NoSchedule NO_SCHEDULE)
            taints=[
                aws.eks.NodeGroupTaintArgs(
                    key=MONITORING_TAINT["key"], value=MONITORING_TAINT["value"], effect="NO_SCHEDULE"
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*node_policies, addons[VPC_CNI]]),
        )
        after_nodes = pulumi.ResourceOptions(parent=self, depends_on=[self.node_group])
        addons["coredns"] = self._addon(name, "coredns", after_nodes)

        # The EBS CSI driver provisions the monitoring stack's volumes, encrypted with this region's key.
        csi_role = self._pod_identity_role(name, "ebs-csi", EBS_CSI_SERVICE_ACCOUNT)
        csi_policies = [
            aws.iam.RolePolicyAttachment(
                f"{name}-ebs-csi-policy",
                role=csi_role.name,
                policy_arn=f"{managed_policy}/service-role/AmazonEBSCSIDriverPolicy",
                opts=in_global,
            ),
            # Volumes are encrypted and attached by EC2 on the driver's behalf.
            self._kms_policy(name, "ebs-csi", csi_role, args["kms_key_arn"], via="ec2", grants=True),
        ]
        self.ebs_csi_driver = self._addon(
            name,
            "aws-ebs-csi-driver",
            pulumi.ResourceOptions(
                parent=self, depends_on=[self.node_group, addons[POD_IDENTITY_AGENT], *csi_policies]
            ),
            pod_identity_associations=[
                aws.eks.AddonPodIdentityAssociationArgs(role_arn=csi_role.arn, service_account=EBS_CSI_SERVICE_ACCOUNT)
            ],
            # The node plugin must run on the tainted monitoring node, whose volumes it attaches; the
            # driver's default already tolerates every taint, said here so no default change can undo it.
            # catalogue: eks.addon-daemonsets-tolerate-taints
            configuration_values=json.dumps({"node": {"tolerateAllTaints": True}}),
        )
        self.addons = {**addons, "aws-ebs-csi-driver": self.ebs_csi_driver}
        self.pod_identity_agent = addons[POD_IDENTITY_AGENT]

        self.kubernetes_provider = k8s.Provider(
            f"{name}-k8s",
            kubeconfig=kubeconfig(
                self.cluster.name, self.cluster.endpoint, self.cluster.certificate_authority.data, region
            ),
            # Update ConfigMaps in place: the DR-status dashboards change on every transition,
            # and without it each change deletes and recreates them.
            # catalogue: pulumi-kubernetes.configmap-data-replaces-unless-mutable
            # catalogue: pulumi-kubernetes.provider-flag-change-updates-provider (adding it keeps every object)
            enable_config_map_mutable=True,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.node_group]),
        )

        self.name = self.cluster.name
        self.node_group_name = self.node_group.node_group_name
        self.monitoring_node_group_name = self.monitoring_node_group.node_group_name
        self.size = size
        self.ebs_kms_key_arn = args["kms_key_arn"]
        self.arn = self.cluster.arn
        self.register_outputs(
            {
                "name": self.name,
                "node_group_name": self.node_group_name,
                "monitoring_node_group_name": self.monitoring_node_group_name,
                "endpoint": self.cluster.endpoint,
            }
        )

    def _role(self, name: str, purpose: str, trust: pulumi.Input[str]) -> aws.iam.Role:
        return aws.iam.Role(
            f"{name}-{purpose}-role",
            assume_role_policy=trust,
            permissions_boundary=self._boundary,
            opts=self._in_global,
        )

    def _pod_identity_role(self, name: str, purpose: str, service_account: str) -> aws.iam.Role:
        """A role for one add-on's service account in kube-system of this cluster."""
        # catalogue: eks.pod-identity-session-tags
        return self._role(name, purpose, pod_identity_trust(self.cluster.arn, ADDON_NAMESPACE, service_account))

    def _kms_policy(
        self, name: str, purpose: str, role: aws.iam.Role, key_arn: pulumi.Input[str], via: str | None, grants: bool
    ) -> aws.iam.RolePolicy:
        """The region's key; with `via`, only through that service (catalogue: kms.via-service-condition)."""
        through = kms_via_service(self._region, via) if via else {}
        use: dict[str, object] = {
            "Effect": "Allow",
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": key_arn,
        }
        statements: list[dict[str, object]] = [{**use, "Condition": through} if through else use]
        if grants:
            # EBS attaches encrypted volumes to instances through grants it creates for itself.
            statements.append(
                {
                    "Effect": "Allow",
                    "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
                    "Resource": key_arn,
                    "Condition": {**through, "Bool": {"kms:GrantIsForAWSResource": "true"}},
                }
            )
        return aws.iam.RolePolicy(
            f"{name}-{purpose}-kms",
            role=role.id,
            policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": statements}),
            opts=self._in_global,
        )

    def _addon(self, name: str, addon: str, opts: pulumi.ResourceOptions, **extra: object) -> aws.eks.Addon:
        return aws.eks.Addon(
            f"{name}-{addon}",
            cluster_name=self.cluster.name,
            addon_name=addon,
            # Take over the self-managed copies EKS installs at creation.
            resolve_conflicts_on_create="OVERWRITE",
            resolve_conflicts_on_update="OVERWRITE",
            **extra,
            opts=opts,
        )


def kubeconfig(
    cluster_name: pulumi.Input[str], endpoint: pulumi.Input[str], certificate_data: pulumi.Input[str], region: str
) -> pulumi.Output[str]:
    """A kubeconfig that fetches a short-lived token with `aws eks get-token`; it holds no credential."""

    def render(values: list[str]) -> str:
        name, server, ca = values
        user = {
            "exec": {
                "apiVersion": "client.authentication.k8s.io/v1beta1",
                "command": "aws",
                "args": ["eks", "get-token", "--cluster-name", name, "--region", region, "--output", "json"],
                "interactiveMode": "Never",
            }
        }
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority-data": ca}}],
                "users": [{"name": name, "user": user}],
                "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
                "current-context": name,
            }
        )

    return pulumi.Output.all(cluster_name, endpoint, certificate_data).apply(render)
