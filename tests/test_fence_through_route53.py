"""R3: the DR region's CloudWatch impaired, an emergency failover pins the traffic fence through Route53's control
plane (`--fence-through-route53`), and the failback's lowering of the fence undoes the pin.

catalogue: route53.control-plane-us-east-1, route53.disabled-check-is-healthy-inverted-unhealthy
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from automation.aws import actions, readiness
from automation.drill.world import DrillWorld
from automation.errors import DrctlError
from automation.evaluate import stack_file_config
from automation.journal import Journal, RunParameters, RunStatus, local_store
from automation.runbook import RunFailedError
from automation.runbooks.failback import prepare_runbook, run_failback_switch
from automation.runbooks.failover import (
    FENCE_THROUGH_ROUTE53_OPTION,
    FailoverMode,
    failover_runbook,
    fence_through_route53_option,
)
from automation.sandbox import MotoSandboxServer, Sandbox, load_balancer_dimension
from tests.dr_world import DR, PRIMARY, Dr

PINNED = {FENCE_THROUGH_ROUTE53_OPTION: "true"}


def test_the_option_is_for_an_emergency_with_a_reason_only() -> None:
    assert fence_through_route53_option(False, FailoverMode.GRACEFUL, None) == {}
    with pytest.raises(DrctlError, match="--fence-through-route53 is for --mode emergency only"):
        fence_through_route53_option(True, FailoverMode.GRACEFUL, "drill")
    with pytest.raises(DrctlError, match="--fence-through-route53 needs --reason"):
        fence_through_route53_option(True, FailoverMode.EMERGENCY, "  ")
    assert fence_through_route53_option(True, FailoverMode.EMERGENCY, "CloudWatch down") == PINNED
    with pytest.raises(DrctlError, match="emergency failover only"):
        failover_runbook(Dr(Path("/nonexistent")).ctx, FailoverMode.GRACEFUL, fence_through_route53=True)


def test_with_the_primary_in_us_east_1_the_pin_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    """The primary (us-east-1) is the failed region: Route53's control plane with it, the pin cannot be made."""
    dr = Dr(tmp_path)
    dr.world.down.add(PRIMARY)
    dr.world.cloudwatch_impaired.add(DR)
    parameters = RunParameters(reason="CloudWatch down", operator="alice", mode="emergency", options=PINNED)
    runbook = failover_runbook(dr.ctx, FailoverMode.EMERGENCY, fence_through_route53=True)
    with pytest.raises(RunFailedError, match=r"traffic_fence_pinnable_through_route53: Route53's control plane is "):
        dr.engine().run(runbook, parameters)
    assert Journal(dr.store()).load().status is RunStatus.REFUSED
    assert PRIMARY not in dr.regions_called()  # us-east-1 never called: neither read nor pinned
    assert dr.world.fence_pinned is False and dr.world.fence_in_authority is None and dr.stack.updates == []


def test_cloudwatch_impaired_the_pinned_failover_goes_ahead_and_failback_unpins(
    server: MotoSandboxServer, tmp_path: Path
) -> None:
    """A primary outside us-east-1 fails while the DR region's CloudWatch is impaired: without the option the
    failover is refused (the fence alarm cannot be read); with it but no --force, refused on the unknown data-loss
    window; with both, the fence is pinned, Route53 answers DR. Failback lowers the fence through its data, then
    unpins it, and Route53 answers the primary again."""
    primary = "eu-west-1"
    config = {
        **stack_file_config("prod"),
        "dr-platform:primaryRegion": primary,
        "dr-platform:activeRegion": primary,
    }
    with Sandbox.open(config, server=server, scale=0, start=datetime(2025, 1, 1, 2, 0, 20, tzinfo=UTC)) as sandbox:
        sandbox.provision()
        sandbox.clock.sleep(600)
        sandbox.publish_metrics()
        world = DrillWorld(
            stack=sandbox.stack,
            clients=sandbox.clients,
            clock=sandbox.clock,
            store=local_store(sandbox.stack.fully_qualified_name, root=tmp_path),
            simulation=True,
            operator="alice",
            error_metrics=lambda region: readiness.load_balancer_metrics(load_balancer_dimension(sandbox.cfg, region)),
            record_traffic_fence=lambda run, raised: sandbox.record_traffic_fence(raised, run.run_id),
            resolvers=(sandbox.authoritative_answer, sandbox.zone_name_servers),
        )
        fence = sandbox.stack.outputs()["dns"]["fence"]
        sandbox.fail_region(primary)
        sandbox.impair_cloudwatch(DR)

        def fail_over(pinned: bool, force: bool) -> object:
            parameters = RunParameters(
                reason="eu-west-1 down, us-west-2 CloudWatch impaired",
                operator="alice",
                mode="emergency",
                force=force,
                options=PINNED if pinned else {},
            )
            runbook = failover_runbook(world.context(), FailoverMode.EMERGENCY, fence_through_route53=pinned)
            return world.engine(lambda line: None).run(runbook, parameters)

        with pytest.raises(RunFailedError, match=r"traffic_fence_deployed: traffic fence: .*us-west-2"):
            fail_over(pinned=False, force=False)
        with pytest.raises(RunFailedError, match=r"data_loss_window_under_rpo: unknown, us-west-2's CloudWatch"):
            fail_over(pinned=True, force=False)
        assert not actions.traffic_fence_pinned(sandbox.clients, fence)

        first_call = len(sandbox.simulated.calls)
        outcome = fail_over(pinned=True, force=True)
        assert outcome.status == "succeeded"
        assert outcome.run.parameters.options == PINNED  # recorded in the journal
        fence_step = next(step for step in outcome.run.steps if step.name == "raise_traffic_fence")
        assert fence_step.detail["state"] == "pinned"
        assert actions.traffic_fence_pinned(sandbox.clients, fence)
        assert sandbox.traffic.answer(sandbox.clock.now()) == DR
        calls = sandbox.simulated.calls[first_call:]
        assert not any(call.region == primary for call in calls)
        assert {(call.operation, call.region) for call in calls if call.service == "route53"} >= {
            ("UpdateHealthCheck", "us-east-1")
        }

        sandbox.restore_region(primary)
        sandbox.restore_cloudwatch(DR)
        sandbox.clock.sleep(600)
        back = RunParameters(reason="eu-west-1 and CloudWatch back", operator="alice")
        assert world.engine(lambda line: None).run(prepare_runbook(world.context()), back).status == "succeeded"
        assert actions.traffic_fence_pinned(sandbox.clients, fence)  # prepare does not touch the fence
        switched = run_failback_switch(world.engine(lambda line: None), world.context(), back)
        assert switched.result == "succeeded"
        lowered = next(step for step in switched.outcome.run.steps if step.name == "lower_traffic_fence")
        assert lowered.detail["state"] == "data" and lowered.detail["changed"]
        assert not actions.traffic_fence_pinned(sandbox.clients, fence)
        sandbox.clock.sleep(300)
        sandbox.publish_metrics()
        assert sandbox.traffic.answer(sandbox.clock.now()) == primary


def test_the_cli_refuses_the_option_for_a_planned_switch_before_opening_the_stack() -> None:
    from typer.testing import CliRunner

    from automation.cli import app

    result = CliRunner().invoke(
        app, ["failover", "--mode", "graceful", "--fence-through-route53", "--reason", "drill", "--yes"]
    )
    assert result.exit_code != 0
    assert "--fence-through-route53 is for --mode emergency only" in (str(result.exception) + result.output)
