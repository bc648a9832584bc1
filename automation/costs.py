"""What the standby (DR) region costs to run per month, per standby profile: an estimate from list prices.

`drctl plan` shows it beside each profile's RTO floor so that the choice between
pilot light, warm and hot standby is made with numbers. Every figure is an
ESTIMATE from the one price table (`automation.prices`: on-demand list prices
with their date and source page), 730 hours a month, the main hourly line
items only. Data transfer (cross-region replication above all), backups,
CloudWatch, requests and load-balancer capacity units are left out, and
savings plans or reserved instances change everything: check the AWS Pricing
Calculator before deciding.

An item whose class or type has no price in the table is listed and not counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from automation.prices import HOURS_PER_MONTH, NAT_GATEWAYS_PER_REGION, PRICES, hourly
from components.cluster import MONITORING_NODE_GROUP_SIZE
from components.config import PlatformConfig, StandbyProfile


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
    node_price = hourly(f"ec2:{node_type}")
    app_nodes = cfg.standby_node_group.desired
    multi_az = cfg.standby_database_multi_az
    db_price = hourly(f"rds:{cfg.db_instance_class}")
    copies = 2 if multi_az else 1  # a Multi-AZ instance and its storage cost twice (a standby in a second zone)
    cache_nodes = 1 + cfg.cache_replicas_per_group
    cache_price = hourly(f"elasticache:{cfg.cache_node_type}")
    lines = (
        CostLine("EKS control plane", _monthly(hourly("eks-cluster"))),
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
            round(cfg.db_allocated_storage_gb * PRICES["rds:gp3"].usd * copies, 2),
        ),
        CostLine(f"{cache_nodes} cache node(s) {cfg.cache_node_type}", _monthly(cache_price, cache_nodes)),
        CostLine(
            f"{NAT_GATEWAYS_PER_REGION} NAT gateways and their public IPv4 addresses",
            _monthly(PRICES["nat-gateway"].usd + PRICES["public-ipv4"].usd, NAT_GATEWAYS_PER_REGION),
        ),
        CostLine("application load balancer (hours only, no capacity units)", _monthly(hourly("alb"))),
    )
    return StandbyCost(cfg.standby_profile, lines)


def _monthly(hourly: float | None, count: int = 1) -> float | None:
    return None if hourly is None else round(hourly * count * HOURS_PER_MONTH, 2)
