"""The offline sandbox: moto for both regions, the program's declared state applied to it, faults on demand.

    with Sandbox.open(config) as sandbox:
        sandbox.provision()                      # steady state, applied to moto
        sandbox.data.write_batch(primary, 100)   # data that must survive
        sandbox.inject("region-failure")
        ...run a runbook with sandbox.stack, sandbox.clients, sandbox.clock...
        sandbox.data.survivors(dr)               # what survived, and the loss window
        sandbox.report()                         # simulation label, modelled RTO, what was simulated

Nothing leaves the machine: the endpoint is asserted to be loopback and the
credentials are dummies. A runbook must use `sandbox.clients` (their hooks
fail calls to a region that is down at once, simulate what moto lacks and
charge the latency model); clients built from the environment still reach
moto, and still find a down region refusing them (the server's guard), but
bypass the models.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import boto3

from automation.aws.clients import AwsClients, Timeouts
from automation.errors import DrctlError
from automation.evaluate import stack_file_config
from automation.sandbox.apply import MotoApplier
from automation.sandbox.clock import DEFAULT_SCALE, LatencyClock
from automation.sandbox.dataplane import DataPlane
from automation.sandbox.server import DUMMY_CREDENTIALS, MotoSandboxServer
from automation.sandbox.simulated import SIMULATED, SimulatedAws
from automation.sandbox.stack import SandboxStack
from automation.stack import namespaced
from automation.stack_standin import StandInStack
from components.config import parse_config
from components.naming import load_balancer_name

SANDBOX_STACK = "organization/dr-platform/sandbox"
_ALB_REQUESTS_PER_MINUTE = 1000.0


class Scenario(StrEnum):
    REGION_FAILURE = "region-failure"
    REPLICA_LAG = "replica-lag"
    DR_UNHEALTHY = "dr-unhealthy"
    CRASH_RESUME = "crash-resume"
    FAILBACK_ROLLBACK = "failback-rollback"


class SimulatedCrash(BaseException):
    """The runner dies mid-step (crash-resume). A BaseException, so the engine journals it and lets it through."""


def load_balancer_dimension(cfg: Any, region: str) -> str:
    """The `LoadBalancer` metric dimension the sandbox publishes ALB metrics under (`app/<name>/<id>`)."""
    return f"app/{load_balancer_name(cfg, cfg.role_of(region))}/sandbox"


class Sandbox:
    def __init__(
        self, server: MotoSandboxServer, config: Mapping[str, str], *, scale: float, start: datetime | None
    ) -> None:
        self.server = server
        self.raw_config = namespaced(config)
        self.cfg = parse_config(self.raw_config)
        self.clock = LatencyClock(self.cfg, start=start, scale=scale)
        self.simulated = SimulatedAws(
            server.outages,
            self.clock,
            endpoint_url=server.endpoint_url,
            on_promoted=lambda region, identifier, at: self.data.database.detach(identifier, at),
            on_replica_created=lambda region, identifier, source, at: self.data.database.attach(
                identifier, source.rsplit(":", 1)[-1]
            ),
            on_cache_primary_changed=self._cache_primary_changed,
            on_cache_member_joined=lambda group, primary: self.data.cache.attach(group, primary),
            publish_metrics=self.publish_metrics,
            on_read_only=self._read_only_changed,
        )
        session = boto3.session.Session(**_session_credentials())
        self.simulated.register(session)
        # One attempt: a down region must fail a call at once, not after the SDK's backoff.
        self.clients = AwsClients(server.endpoint_url, session=session, timeouts=Timeouts(max_attempts=1))
        # The sandbox's own calls (publishing metrics, copying objects) are AWS's work: no hooks, no charges.
        self._internal = AwsClients(server.endpoint_url, session=boto3.session.Session(**_session_credentials()))
        self.applier = MotoApplier(self.clients, self.simulated, self.cfg)
        self.stack = SandboxStack(
            StandInStack(self.raw_config, name=SANDBOX_STACK, deployed=False), self.applier, self.clock, self._rewrite
        )
        self.data = DataPlane(
            now=self.clock.now,
            outputs=self.stack.outputs,
            s3_client=lambda region: self._internal.client("s3", region),
            region_down=lambda region: region in server.outages.down,
            cache_primary=self.simulated.cache_primary,
        )
        self.faults: list[str] = []
        self._error_rates: dict[str, float] = {}
        self._crash_steps: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    @contextmanager
    def open(
        cls,
        config: Mapping[str, str] | None = None,
        *,
        server: MotoSandboxServer | None = None,
        scale: float = DEFAULT_SCALE,
        start: datetime | None = None,
    ) -> Iterator[Sandbox]:
        """A fresh sandbox: starts moto (or resets the given server), sets the environment, enters the clock."""
        own_server = server is None
        moto = server or MotoSandboxServer()
        if own_server:
            moto.start()
        else:
            moto.reset()
        try:
            with moto.environment():
                sandbox = cls(moto, config or stack_file_config("prod"), scale=scale, start=start)
                with sandbox.clock:
                    yield sandbox
        finally:
            if own_server:
                moto.stop()

    # --- provisioning ---------------------------------------------------------------

    def provision(self) -> dict[str, Any]:
        """Apply the config's state to an empty moto (a whole-stack update); returns the stack outputs."""
        self.stack.up(None, message="sandbox: provision")
        return self.stack.outputs()

    def _rewrite(self, outputs: Mapping[str, Any]) -> dict[str, Any]:
        """Stack outputs as a real engine would report them: the ids and ARNs moto assigned."""
        rewritten = self.applier.ids.translate(dict(outputs))
        zone_ids = [real for urn, real in self.applier.ids.real_ids.items() if "aws:route53/zone:Zone" in urn]
        if zone_ids and "dns" in rewritten:
            rewritten["dns"]["zoneId"] = zone_ids[0]
        for region, check_id in (rewritten.get("dns", {}).get("healthChecks") or {}).items():
            self.simulated.health_check_regions[check_id] = region
        for region, entry in (rewritten.get("database") or {}).items():
            if region in self.server.outages.down:
                continue
            found = self._internal.client("rds", region).describe_db_instances()["DBInstances"]
            instance = next((i for i in found if i["DBInstanceIdentifier"] == entry["identifier"]), None)
            if instance is not None:
                endpoint = instance.get("Endpoint") or {}
                entry["endpoint"] = f"{endpoint.get('Address')}:{endpoint.get('Port')}"
        return rewritten

    # --- faults ------------------------------------------------------------------------

    def inject(self, scenario: Scenario | str, *, step: str | None = None) -> str:
        """Start a scenario's fault now; returns what was done (also listed in `report()`)."""
        scenario = Scenario(scenario)
        if scenario is Scenario.REGION_FAILURE:
            return self.fail_region(self.cfg.primary_region)
        if scenario is Scenario.REPLICA_LAG:
            return self.set_replica_lag(self.cfg.rpo_seconds + 120)
        if scenario is Scenario.DR_UNHEALTHY:
            return self.make_unhealthy(self.cfg.dr_region)
        if scenario is Scenario.CRASH_RESUME:
            if not step:
                raise DrctlError("the crash-resume scenario needs the step to crash at")
            return self.crash_once_at(step)
        return self.set_error_rate(self.cfg.primary_region, 0.2)

    def _fault(self, description: str) -> str:
        with self._lock:
            self.faults.append(description)
        return description

    def fail_region(self, region: str, *, global_control_planes: bool = False) -> str:
        """Every API of `region` stops answering; what S3 replicated until now stays replicated."""
        self.data.replicate_objects()
        self.data.region_down(region, self.clock.now())
        self.server.outages.fail(region, global_control_planes=global_control_planes)
        scope = " (Route53 and IAM control planes too)" if global_control_planes else ""
        return self._fault(f"region {region} unreachable from {self.clock.now().isoformat()}{scope}")

    def restore_region(self, region: str) -> str:
        self.server.outages.restore(region)
        self.data.region_down(region, None)
        return self._fault(f"region {region} reachable again from {self.clock.now().isoformat()}")

    def set_replica_lag(self, seconds: float) -> str:
        """The database replica falls `seconds` behind: in the data plane and in the ReplicaLag metric."""
        self.data.database.lag_seconds = seconds
        return self._fault(f"database replica lag {seconds:g}s (RPO {self.cfg.rpo_seconds}s)")

    def make_unhealthy(self, region: str) -> str:
        """Route53 checkers find the region's endpoint failing."""
        check_id = self.stack.outputs()["dns"]["healthChecks"][region]
        self.simulated.unhealthy_health_checks.add(check_id)
        return self._fault(f"health check {check_id} of {region} failing")

    def set_error_rate(self, region: str, ratio: float) -> str:
        """The region's load balancer answers `ratio` of requests with a 5xx from now on."""
        with self._lock:
            self._error_rates[region] = ratio
        return self._fault(f"{ratio:.0%} of requests in {region} fail with 5xx")

    def crash_once_at(self, step: str) -> str:
        with self._lock:
            self._crash_steps.add(step)
        return self._fault(f"runner crashes once at step {step}")

    def crash_point(self, step: str) -> None:
        """Call at the start of a step's action: raises `SimulatedCrash` the first time for a crash step."""
        with self._lock:
            if step not in self._crash_steps:
                return
            self._crash_steps.discard(step)
        raise SimulatedCrash(f"simulated crash of the runner at step {step}")

    # --- what AWS would have published ----------------------------------------------------

    def publish_metrics(self) -> None:
        """ReplicaLag of each database replica and the ALB request/5xx counts, stamped with the modelled now."""
        outputs = self.stack.outputs()
        # Stamped just before now: CloudWatch reads exclude a datapoint at their end time.
        now = self.clock.now() - timedelta(seconds=1)
        down = self.server.outages.down
        for region, entry in (outputs.get("database") or {}).items():
            if region in down or not self.data.database.is_replica(entry["identifier"]):
                continue
            self._internal.client("cloudwatch", region).put_metric_data(
                Namespace="AWS/RDS",
                MetricData=[
                    {
                        "MetricName": "ReplicaLag",
                        "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": entry["identifier"]}],
                        "Timestamp": now,
                        "Value": self.data.database.lag(entry["identifier"], self.clock.now()),
                        "Unit": "Seconds",
                    }
                ],
            )
        for region in (self.cfg.primary_region, self.cfg.dr_region):
            if region in down:
                continue
            with self._lock:
                ratio = self._error_rates.get(region, 0.0)
            dimensions = [{"Name": "LoadBalancer", "Value": load_balancer_dimension(self.cfg, region)}]
            self._internal.client("cloudwatch", region).put_metric_data(
                Namespace="AWS/ApplicationELB",
                MetricData=[
                    {"MetricName": name, "Dimensions": dimensions, "Timestamp": now, "Value": value, "Unit": "Count"}
                    for name, value in (
                        ("RequestCount", _ALB_REQUESTS_PER_MINUTE),
                        ("HTTPCode_Target_5XX_Count", _ALB_REQUESTS_PER_MINUTE * ratio),
                    )
                ],
            )

    def _read_only_changed(self, region: str, parameter_group: str, read_only: bool, at: datetime) -> None:
        """`default_transaction_read_only` changed: the instances of the region that use the group follow."""
        found = self._internal.client("rds", region).describe_db_instances()["DBInstances"]
        for instance in found:
            if any(group["DBParameterGroupName"] == parameter_group for group in instance.get("DBParameterGroups", [])):
                self.data.database.read_only(instance["DBInstanceIdentifier"], at if read_only else None)

    def _cache_primary_changed(self, old_group: str, new_group: str, at: datetime) -> None:
        self.data.cache.detach(new_group, at)
        self.data.cache.attach(old_group, new_group)

    # --- reporting -------------------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        """The sandbox's part of any report: the simulation label, what was simulated, faults, modelled time."""
        window = self.data.data_loss_window()
        return {
            "mode": "sandbox",
            "simulation": True,
            "simulated": list(SIMULATED),
            "faults": list(self.faults),
            "latency": self.clock.summary(),
            "data_loss_window_seconds": window.loss_window_seconds if window else None,
            "applied": [change.to_dict() for change in self.stack.applied],
        }


def _session_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "aws_session_token": DUMMY_CREDENTIALS["AWS_SESSION_TOKEN"],
    }
