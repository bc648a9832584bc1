"""What the standby (DR) region costs to run per month, per standby profile: an estimate from list prices.

`drctl plan` shows it beside each profile's RTO floor so that the choice between
pilot light, warm and hot standby is made with numbers. Every figure is an
ESTIMATE: on-demand list prices read from AWS's public pricing pages on the
date below (the same in us-east-1 and us-west-2 for these items), 730 hours a
month, the main hourly line items only. Data transfer (cross-region
replication above all), backups, CloudWatch, requests and load-balancer
capacity units are left out, and savings plans or reserved instances change
everything: check the AWS Pricing Calculator before deciding.

An item whose class or type has no price here is listed and not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.cluster import MONITORING_NODE_GROUP_SIZE
from components.config import PlatformConfig, StandbyProfile

PRICES_READ_ON = "2025-06-01"
HOURS_PER_MONTH = 730
SOURCES = (
    "https://aws.amazon.com/eks/pricing/",
    "https://aws.amazon.com/ec2/pricing/on-demand/",
    "https://aws.amazon.com/rds/postgresql/pricing/",
    "https://aws.amazon.com/elasticache/pricing/",
    "https://aws.amazon.com/vpc/pricing/",
    "https://aws.amazon.com/elasticloadbalancing/pricing/",
)

EKS_CLUSTER_HOURLY = 0.10
EC2_HOURLY = {"m6i.large": 0.096, "m6i.xlarge": 0.192, "m7i.large": 0.1008, "m6g.large": 0.077}
RDS_POSTGRES_SINGLE_AZ_HOURLY = {"db.r6g.large": 0.225, "db.r6g.xlarge": 0.45, "db.m6g.large": 0.168}
"""Single-AZ; a Multi-AZ instance costs twice (a standby in a second zone)."""
RDS_GP3_GB_MONTH = 0.115
"""Single-AZ; twice for Multi-AZ."""
CACHE_NODE_HOURLY = {"cache.r7g.large": 0.219, "cache.r6g.large": 0.206, "cache.m7g.large": 0.158}
NAT_GATEWAY_HOURLY = 0.045
PUBLIC_IPV4_HOURLY = 0.005
ALB_HOURLY = 0.0225
NAT_GATEWAYS_PER_REGION = 3
"""One per zone (components/network.py), each with an Elastic IP."""


@dataclass(frozen=True)
class CostLine:
    item: str
    monthly_usd: float | None
    """None: no price in the table for its class or type; not counted."""


@dataclass(frozen=True)
class StandbyCost:
    profile: StandbyProfile
    lines: tuple[CostLine, ...]

    @property
    def monthly_usd(self) -> float:
        return round(sum(line.monthly_usd or 0.0 for line in self.lines), 2)

    @property
    def unpriced(self) -> list[str]:
        return [line.item for line in self.lines if line.monthly_usd is None]

    def to_json(self) -> dict[str, object]:
        return {
            "profile": self.profile.value,
            "monthlyUsd": self.monthly_usd,
            "estimate": True,
            "lines": [{"item": line.item, "monthlyUsd": line.monthly_usd} for line in self.lines],
            "notCounted": self.unpriced,
        }


def standby_region_cost(cfg: PlatformConfig) -> StandbyCost:
    """The standby region's main hourly line items under `cfg`'s standby profile."""
    node_type = cfg.node_instance_types[0]
    node_price = EC2_HOURLY.get(node_type)
    app_nodes = cfg.standby_node_group.desired
    multi_az = cfg.standby_database_multi_az
    db_price = RDS_POSTGRES_SINGLE_AZ_HOURLY.get(cfg.db_instance_class)
    copies = 2 if multi_az else 1
    cache_nodes = 1 + cfg.cache_replicas_per_group
    cache_price = CACHE_NODE_HOURLY.get(cfg.cache_node_type)
    lines = (
        CostLine("EKS control plane", _monthly(EKS_CLUSTER_HOURLY)),
        CostLine(f"{app_nodes} application node(s) {node_type}", _monthly(node_price, app_nodes)),
        CostLine(
            f"{MONITORING_NODE_GROUP_SIZE.desired} monitoring node {node_type}",
            _monthly(node_price, MONITORING_NODE_GROUP_SIZE.desired),
        ),
        CostLine(
            f"database replica {cfg.db_instance_class} {'Multi-AZ' if multi_az else 'Single-AZ'}",
            _monthly(db_price, copies),
        ),
        CostLine(
            f"database storage {cfg.db_allocated_storage_gb} GB gp3",
            round(cfg.db_allocated_storage_gb * RDS_GP3_GB_MONTH * copies, 2),
        ),
        CostLine(f"{cache_nodes} cache node(s) {cfg.cache_node_type}", _monthly(cache_price, cache_nodes)),
        CostLine(
            f"{NAT_GATEWAYS_PER_REGION} NAT gateways and their public IPv4 addresses",
            _monthly(NAT_GATEWAY_HOURLY + PUBLIC_IPV4_HOURLY, NAT_GATEWAYS_PER_REGION),
        ),
        CostLine("application load balancer (hours only, no capacity units)", _monthly(ALB_HOURLY)),
    )
    return StandbyCost(cfg.standby_profile, lines)


def _monthly(hourly: float | None, count: int = 1) -> float | None:
    return None if hourly is None else round(hourly * count * HOURS_PER_MONTH, 2)
