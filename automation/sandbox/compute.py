"""EKS managed node groups over time: what DescribeNodegroup, the Auto Scaling group and the ALB target group say.

moto makes a node group ACTIVE at its new size the moment it is asked. On AWS
an `UpdateNodegroupConfig` puts the group in UPDATING until EKS has changed its
Auto Scaling group, and only then do new nodes boot, join and become Ready, and
the application's pods behind the load balancer pass their health checks
(catalogue: eks.node-group-update-is-asynchronous, eks.active-is-not-ready). A
second update while one runs is refused with ResourceInUseException. Each
update is modelled once, from when it was asked: however many callers wait on
it, the scale-up costs its duration once (no charge on the clock).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from automation.timings import Op, latency
from components.config import PlatformConfig

SCALE_DOWN_SECONDS = latency(Op.NODE_GROUP_SCALE_DOWN)
UPDATE_SECONDS = latency(Op.NODE_GROUP_UPDATE)


@dataclass(frozen=True)
class Scaling:
    min: int
    desired: int
    max: int

    @classmethod
    def from_api(cls, raw: dict[str, int]) -> Scaling:
        return cls(int(raw["minSize"]), int(raw["desiredSize"]), int(raw["maxSize"]))


@dataclass
class NodeGroupModel:
    region: str
    cluster: str
    name: str
    auto_scaling_group: str
    updates: list[tuple[datetime, Scaling]] = field(default_factory=list)

    def scaling_at(self, at: datetime) -> Scaling | None:
        return next((scaling for since, scaling in reversed(self.updates) if since <= at), None)

    def status_at(self, at: datetime) -> str:
        if not self.updates:
            return "CREATING"
        last = self.updates[-1][0]
        return "UPDATING" if len(self.updates) > 1 and at < last + timedelta(seconds=UPDATE_SECONDS) else "ACTIVE"

    def ready_nodes_at(self, at: datetime, scale_up_seconds: float) -> int:
        """Nodes booted, joined and Ready at `at`: a scale-up counts from the update that asked for it."""
        ready = 0
        for since, scaling in self.updates:
            delay = scale_up_seconds if scaling.desired > ready else SCALE_DOWN_SECONDS
            if since + timedelta(seconds=delay) <= at:
                ready = scaling.desired
        return ready


class ComputeModel:
    def __init__(self, cfg: PlatformConfig) -> None:
        self.scale_up_seconds = latency(Op.NODE_GROUP_SCALE_UP, cfg)
        self.groups: dict[tuple[str, str, str], NodeGroupModel] = {}
        self._lock = threading.RLock()

    def created(self, region: str, cluster: str, name: str, asg: str, scaling: Scaling, at: datetime) -> None:
        with self._lock:
            model = NodeGroupModel(region, cluster, name, asg)
            # The stack a drill starts from was deployed long before: its nodes have been Ready all along.
            model.updates.append((at - timedelta(days=1), scaling))
            self.groups[(region, cluster, name)] = model

    def group(self, region: str, cluster: str, name: str) -> NodeGroupModel | None:
        with self._lock:
            return self.groups.get((region, cluster, name))

    def update(self, region: str, cluster: str, name: str, scaling: Scaling, at: datetime) -> str | None:
        """Record UpdateNodegroupConfig; returns the refusal EKS would give, or None."""
        with self._lock:
            model = self.groups.get((region, cluster, name))
            if model is None:
                return None
            if model.status_at(at) == "UPDATING":
                # catalogue: eks.node-group-update-is-asynchronous
                return f"Nodegroup {name} cannot be updated as it is currently at UPDATING state"
            if model.scaling_at(at) != scaling:
                model.updates.append((at, scaling))
            return None

    def ready_nodes(self, region: str, at: datetime) -> int:
        with self._lock:
            return sum(m.ready_nodes_at(at, self.scale_up_seconds) for m in self.groups.values() if m.region == region)

    def by_auto_scaling_group(self, name: str) -> NodeGroupModel | None:
        with self._lock:
            return next((m for m in self.groups.values() if m.auto_scaling_group == name), None)
