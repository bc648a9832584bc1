"""AWS's public on-demand list prices, ONE dated table with each price's source page; what a stack costs idle.

The only place prices live: `drctl plan`'s standby-profile costs
(`automation.costs`) and the drill stack's daily cost read them here.
`python -m automation.prices STACK` prints the daily estimate for
`Pulumi.<STACK>.yaml`; the README's drill-stack figure is that command's output
(tests/test_live_drill.py keeps them equal).

Prices are us-east-1 on-demand list prices in USD, applied to both regions
(us-west-2 lists the same figures for everything below). What is left out:
data transfer (cross-region replication, NAT processing), load balancer
capacity units, request charges (S3, KMS, Route53 queries), backup storage and
CloudWatch metrics beyond the free tier: small for an idle drill stack, not for
a busy one. The estimate is a floor, not a bill.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass

from components.cluster import MONITORING_NODE_GROUP_SIZE
from components.config import PlatformConfig

PRICES_DATE = "2025-06"
"""When the figures below were read from AWS's price pages (not re-read since: check before you quote)."""
HOURS_PER_DAY = 24
HOURS_PER_MONTH = 730
"""AWS bills monthly items pro rata over 730 hours."""


@dataclass(frozen=True)
class Price:
    usd: float
    unit: str
    source: str
    """The AWS price page it was read from."""
    read_on: str = PRICES_DATE
    """When it was read (a price added later carries its own date)."""


EC2 = "https://aws.amazon.com/ec2/pricing/on-demand/"
RDS = "https://aws.amazon.com/rds/postgresql/pricing/"
ELASTICACHE = "https://aws.amazon.com/elasticache/pricing/"
VPC = "https://aws.amazon.com/vpc/pricing/"
ROUTE53 = "https://aws.amazon.com/route53/pricing/"
_INSTANCE_HOUR = "per instance-hour"
_RDS_INSTANCE_HOUR = "per instance-hour, single-AZ (Multi-AZ: twice)"

PRICES: Mapping[str, Price] = {
    "eks-cluster": Price(0.10, "per cluster-hour (standard support)", "https://aws.amazon.com/eks/pricing/"),
    "ec2:t3.medium": Price(0.0416, _INSTANCE_HOUR, EC2),
    "ec2:t3.large": Price(0.0832, _INSTANCE_HOUR, EC2),
    "ec2:m6i.large": Price(0.096, _INSTANCE_HOUR, EC2),
    "ec2:m6i.xlarge": Price(0.192, _INSTANCE_HOUR, EC2),
    "ec2:m7i.large": Price(0.1008, _INSTANCE_HOUR, EC2),
    "ec2:m6g.large": Price(0.077, _INSTANCE_HOUR, EC2),
    "nat-gateway": Price(0.045, "per gateway-hour", VPC),
    "public-ipv4": Price(0.005, "per in-use public IPv4 address-hour (a NAT gateway's Elastic IP)", VPC),
    "alb": Price(0.0225, "per load-balancer-hour", "https://aws.amazon.com/elasticloadbalancing/pricing/"),
    "rds:db.t4g.medium": Price(0.065, _RDS_INSTANCE_HOUR, RDS),
    "rds:db.m6g.large": Price(0.168, _RDS_INSTANCE_HOUR, RDS),
    "rds:db.r6g.large": Price(0.225, _RDS_INSTANCE_HOUR, RDS),
    "rds:db.r6g.xlarge": Price(0.45, _RDS_INSTANCE_HOUR, RDS),
    "rds:gp3": Price(0.115, "per GB-month, single-AZ (Multi-AZ: twice)", RDS),
    "elasticache:cache.m6g.large": Price(0.149, "per node-hour", ELASTICACHE),
    "elasticache:cache.m7g.large": Price(0.158, "per node-hour", ELASTICACHE),
    "elasticache:cache.r6g.large": Price(0.206, "per node-hour", ELASTICACHE),
    "elasticache:cache.r7g.large": Price(0.219, "per node-hour", ELASTICACHE),
    "ebs:gp3": Price(0.08, "per GB-month", "https://aws.amazon.com/ebs/pricing/"),
    "route53:zone": Price(0.50, "per hosted zone-month", ROUTE53),
    "route53:health-check": Price(
        2.50, "per health check-month: AWS endpoint 0.50 + HTTPS 1.00 + 10 s interval 1.00", ROUTE53
    ),
    "kms:key": Price(1.00, "per key-month", "https://aws.amazon.com/kms/pricing/"),
    "secretsmanager:secret": Price(0.40, "per secret-month", "https://aws.amazon.com/secrets-manager/pricing/"),
}

NAT_GATEWAYS_PER_REGION = 3
"""components/network.py: one per availability zone, each with an Elastic IP."""
MONITORING_NODES_PER_REGION = MONITORING_NODE_GROUP_SIZE.desired
KMS_KEYS_PER_REGION = 2
"""Estimate: the region's data key and its EBS key (components/encryption.py, cluster.py)."""
SECRETS_PER_REGION = 2
"""The master credential (or its replica) and the cache's AUTH secret."""


def read_on() -> str:
    """The oldest date a price in the table was read: what an estimate built from it is as of."""
    return min(entry.read_on for entry in PRICES.values())


def sources() -> list[str]:
    return sorted({entry.source for entry in PRICES.values()})


@dataclass(frozen=True)
class CostLine:
    item: str
    quantity: str
    usd_per_day: float


class UnpricedError(KeyError):
    """The table has no price for a size the stack uses: add it (with its source) rather than guess."""


def price(key: str) -> Price:
    if key not in PRICES:
        raise UnpricedError(f"automation/prices.py has no price for {key}: add it from {_page(key)}")
    return PRICES[key]


def hourly(key: str) -> float | None:
    """The hourly price, or None when the table has none (an estimate that lists what it could not count)."""
    return PRICES[key].usd if key in PRICES else None


def _page(key: str) -> str:
    service = key.split(":", 1)[0]
    return {"ec2": EC2, "rds": RDS, "elasticache": ELASTICACHE}.get(service, "AWS's price pages")


def daily_cost(cfg: PlatformConfig) -> list[CostLine]:
    """The stack's standing cost per day in steady state (both regions; the active one at full size)."""
    hours = HOURS_PER_DAY
    monthly = HOURS_PER_DAY / HOURS_PER_MONTH
    node_type = cfg.node_instance_types[0]
    nodes = cfg.node_group_full.desired + cfg.node_group_standby.desired + 2 * MONITORING_NODES_PER_REGION
    db_instances = 2  # the writer and its cross-region replica, each Multi-AZ (components/database.py)
    cache_nodes = 2 * (1 + cfg.cache_replicas_per_group)
    monitoring_gb = 2 * (cfg.prometheus_storage_gb + cfg.grafana_storage_gb)
    lines = [
        CostLine("EKS control planes", "2 clusters", 2 * price("eks-cluster").usd * hours),
        CostLine(f"EKS nodes ({node_type})", f"{nodes} instances", nodes * price(f"ec2:{node_type}").usd * hours),
        CostLine(
            "NAT gateways and their public IPv4 addresses",
            f"{2 * NAT_GATEWAYS_PER_REGION} gateways",
            2 * NAT_GATEWAYS_PER_REGION * (price("nat-gateway").usd + price("public-ipv4").usd) * hours,
        ),
        CostLine("Application load balancers", "2", 2 * price("alb").usd * hours),
        CostLine(
            f"RDS PostgreSQL ({cfg.db_instance_class}, Multi-AZ)",
            f"{db_instances} instances",
            db_instances * 2 * price(f"rds:{cfg.db_instance_class}").usd * hours,
        ),
        CostLine(
            "RDS storage (gp3, Multi-AZ)",
            f"{db_instances} x {cfg.db_allocated_storage_gb} GB",
            db_instances * 2 * cfg.db_allocated_storage_gb * price("rds:gp3").usd * monthly,
        ),
        CostLine(
            f"ElastiCache ({cfg.cache_node_type})",
            f"{cache_nodes} nodes",
            cache_nodes * price(f"elasticache:{cfg.cache_node_type}").usd * hours,
        ),
        CostLine("Monitoring volumes (gp3)", f"{monitoring_gb} GB", monitoring_gb * price("ebs:gp3").usd * monthly),
        CostLine(
            "Route53 zone and health checks",
            "1 zone, 2 checks",
            (price("route53:zone").usd + 2 * price("route53:health-check").usd) * monthly,
        ),
        CostLine(
            "KMS keys and secrets",
            f"{2 * KMS_KEYS_PER_REGION} keys, {2 * SECRETS_PER_REGION} secrets",
            (
                2 * KMS_KEYS_PER_REGION * price("kms:key").usd
                + 2 * SECRETS_PER_REGION * price("secretsmanager:secret").usd
            )
            * monthly,
        ),
    ]
    return lines


def total(lines: list[CostLine]) -> float:
    return sum(line.usd_per_day for line in lines)


def render(stack: str, lines: list[CostLine]) -> str:
    rows = [f"| {line.item} | {line.quantity} | {line.usd_per_day:.2f} |" for line in lines]
    return "\n".join(
        [
            f"Stack {stack}: about **{total(lines):.0f} USD per day** left running in steady state "
            f"(AWS on-demand list prices of {read_on()}, us-east-1; `python -m automation.prices {stack}`)",
            "",
            "| item | quantity | USD/day |",
            "|---|---|---:|",
            *rows,
        ]
    )


def main(argv: list[str]) -> None:
    from automation.evaluate import stack_file_config
    from components.config import parse_config

    stack = argv[0] if argv else "drill"
    print(render(stack, daily_cost(parse_config(stack_file_config(stack)))))


if __name__ == "__main__":
    main(sys.argv[1:])
