"""A VPC per region across three availability zones, named by AZ ID.

Three tiers of subnets: public (load balancer, NAT), private application
(EKS nodes) and private data (database, cache). Data-tier security groups
admit PostgreSQL and Redis only from inside the VPC.
"""

from __future__ import annotations

import ipaddress
from typing import TypedDict

import pulumi
import pulumi_aws as aws

POSTGRES_PORT = 5432
REDIS_PORT = 6379


class NetworkArgs(TypedDict):
    region: str
    cidr: str
    availability_zone_ids: tuple[str, ...]
    """AZ IDs, the same physical zones in every account (catalogue: ec2.availability-zone-names-differ-per-account)."""
    name_prefix: str


def tier_cidrs(cidr: str) -> dict[str, list[str]]:
    """Split the VPC block: /4 smaller blocks, three per tier, in a fixed order."""
    blocks = list(ipaddress.ip_network(cidr).subnets(prefixlen_diff=4))
    return {
        "public": [str(b) for b in blocks[0:3]],
        "app": [str(b) for b in blocks[4:7]],
        "data": [str(b) for b in blocks[8:11]],
    }


class Network(pulumi.ComponentResource):
    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dr-platform:network:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = args["name_prefix"]
        cidrs = tier_cidrs(args["cidr"])
        zones = args["availability_zone_ids"]

        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args["cidr"],
            enable_dns_hostnames=True,
            enable_dns_support=True,
            tags={"Name": f"{prefix}-vpc"},
            opts=child,
        )
        igw = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=self.vpc.id, tags={"Name": f"{prefix}-igw"}, opts=child)
        public_routes = aws.ec2.RouteTable(
            f"{name}-public-rt",
            vpc_id=self.vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
            tags={"Name": f"{prefix}-public"},
            opts=child,
        )

        self.public_subnets: list[aws.ec2.Subnet] = []
        self.app_subnets: list[aws.ec2.Subnet] = []
        self.data_subnets: list[aws.ec2.Subnet] = []
        private_route_tables: list[aws.ec2.RouteTable] = []
        for index, zone in enumerate(zones):
            public = aws.ec2.Subnet(
                f"{name}-public-{index}",
                vpc_id=self.vpc.id,
                cidr_block=cidrs["public"][index],
                availability_zone_id=zone,
                map_public_ip_on_launch=False,
                tags={"Name": f"{prefix}-public-{zone}", "kubernetes.io/role/elb": "1"},
                # A NAT gateway or internet-facing load balancer placed here before the
                # gateway is attached fails (Gateway.NotAttached / "VPC has no internet gateway").
                opts=pulumi.ResourceOptions(parent=self, depends_on=[igw]),
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-public-{index}-rta", subnet_id=public.id, route_table_id=public_routes.id, opts=child
            )
            # One NAT gateway per zone: losing a zone must not cut the others' egress.
            eip = aws.ec2.Eip(
                f"{name}-nat-{index}-eip", domain="vpc", tags={"Name": f"{prefix}-nat-{zone}"}, opts=child
            )
            nat = aws.ec2.NatGateway(
                f"{name}-nat-{index}",
                allocation_id=eip.id,
                subnet_id=public.id,
                tags={"Name": f"{prefix}-nat-{zone}"},
                opts=child,
            )
            private_routes = aws.ec2.RouteTable(
                f"{name}-private-{index}-rt",
                vpc_id=self.vpc.id,
                routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
                tags={"Name": f"{prefix}-private-{zone}"},
                opts=child,
            )
            private_route_tables.append(private_routes)
            for tier, bucket, extra_tags in (
                ("app", self.app_subnets, {"kubernetes.io/role/internal-elb": "1"}),
                ("data", self.data_subnets, {}),
            ):
                subnet = aws.ec2.Subnet(
                    f"{name}-{tier}-{index}",
                    vpc_id=self.vpc.id,
                    cidr_block=cidrs[tier][index],
                    availability_zone_id=zone,
                    tags={"Name": f"{prefix}-{tier}-{zone}", **extra_tags},
                    opts=child,
                )
                aws.ec2.RouteTableAssociation(
                    f"{name}-{tier}-{index}-rta", subnet_id=subnet.id, route_table_id=private_routes.id, opts=child
                )
                bucket.append(subnet)
            self.public_subnets.append(public)

        # S3 traffic (replication checks, backups, app data) stays off the NAT gateways.
        aws.ec2.VpcEndpoint(
            f"{name}-s3-endpoint",
            vpc_id=self.vpc.id,
            service_name=f"com.amazonaws.{args['region']}.s3",
            vpc_endpoint_type="Gateway",
            route_table_ids=[rt.id for rt in private_route_tables],
            opts=child,
        )

        self.database_security_group = self._inside_only(name, "database", POSTGRES_PORT, args["cidr"], prefix)
        self.cache_security_group = self._inside_only(name, "cache", REDIS_PORT, args["cidr"], prefix)

        self.vpc_id = self.vpc.id
        self.public_subnet_ids = [s.id for s in self.public_subnets]
        self.app_subnet_ids = [s.id for s in self.app_subnets]
        self.data_subnet_ids = [s.id for s in self.data_subnets]
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "public_subnet_ids": self.public_subnet_ids,
                "app_subnet_ids": self.app_subnet_ids,
                "data_subnet_ids": self.data_subnet_ids,
            }
        )

    def _inside_only(self, name: str, tier: str, port: int, cidr: str, prefix: str) -> aws.ec2.SecurityGroup:
        group = aws.ec2.SecurityGroup(
            f"{name}-{tier}-sg",
            vpc_id=self.vpc.id,
            description=f"{tier} traffic from inside the VPC only",
            tags={"Name": f"{prefix}-{tier}"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-{tier}-ingress",
            security_group_id=group.id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            cidr_ipv4=cidr,
            description=f"{tier} clients inside the VPC",
            opts=pulumi.ResourceOptions(parent=self),
        )
        return group
