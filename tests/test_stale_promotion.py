"""An update killed after RDS promoted the replica leaves the state recording a replica (review B4, sandbox
leniency 7): the next update would call PromoteReadReplica on a standalone instance, which RDS refuses; drctl
refreshes that one resource first."""

from __future__ import annotations

import pytest

from automation.aws.readiness import DatabaseInstance
from automation.errors import DrctlError
from automation.runbooks.context import DrAws
from automation.runbooks.stale_promotions import refresh_promoted_replicas
from automation.sandbox import Sandbox, SimulatedCrash
from automation.stack import RDS_INSTANCE_TYPE, ResourceStep
from automation.stack_standin import StandInStack, cached_evaluation
from automation.targets import surviving_region_targets
from automation.transitions import transition_config
from tests.conftest import prod_config

PRIMARY, DR = "us-east-1", "us-west-2"


@pytest.fixture
def sandbox(provisioned_sandbox: Sandbox) -> Sandbox:
    return provisioned_sandbox


def _promotion_calls(sandbox: Sandbox) -> int:
    return sum(1 for call in sandbox.simulated.calls if call.operation == "PromoteReadReplica")


def test_an_update_killed_after_the_promotion_resumes_after_a_targeted_refresh(sandbox: Sandbox) -> None:
    """catalogue: pulumi-aws.promotion-follows-the-recorded-source, rds.promote-needs-a-replica,
    pulumi-cli.targeted-refresh"""
    config = transition_config(sandbox.stack.get_config(), "failed-over")
    sandbox.stack.set_config(config)
    targets = surviving_region_targets(cached_evaluation(config, "sandbox"), PRIMARY)
    sandbox.stack.kill_next_update_after_promotion()
    with pytest.raises(SimulatedCrash):
        sandbox.stack.up(targets)
    (urn,) = sandbox.stack.replicas_in_state()  # the state still records the DR instance as a replica
    assert [op.kind for op in sandbox.stack.pending_operations()] == ["updating"]
    aws = DrAws(sandbox.clients, sandbox.clock)
    recorded = sandbox.stack.replicas_in_state()[urn]
    sandbox.clock.sleep(900)  # the promotion completes in AWS meanwhile
    assert aws.describe_database(recorded.region, recorded.identifier).role == "writer"

    # Rerun as is: the provider promotes again and RDS refuses.
    with pytest.raises(DrctlError, match=r"InvalidDBInstanceState.*not a read replica"):
        sandbox.stack.up(targets)
    assert _promotion_calls(sandbox) == 2  # the killed update's, accepted; the rerun's, refused

    logged: list[str] = []
    changed = sandbox.stack.preview(targets).changed
    assert refresh_promoted_replicas(sandbox.stack, aws.describe_database, changed, logged.append) == [urn]
    assert sandbox.stack.replicas_in_state() == {} and "interrupted update" in logged[0]
    sandbox.stack.up(targets)
    assert _promotion_calls(sandbox) == 2  # no third call: the refreshed state has nothing to promote
    assert sandbox.stack.outputs()["database"][DR]["role"] == "writer"


def _writer(region: str, identifier: str) -> DatabaseInstance:
    return DatabaseInstance(
        identifier, region, f"arn:{identifier}", "available", None, (), None, True, None, {}, 7, None
    )


def test_only_an_instance_the_update_changes_and_aws_shows_promoted_is_refreshed() -> None:
    stack = StandInStack(prod_config())
    (urn,) = stack.replicas_in_state()
    stack.live_inputs[urn] = {k: v for k, v in stack.state[urn].inputs.items() if k != "replicateSourceDb"}
    described: list[tuple[str, str]] = []

    def describe(region: str, identifier: str) -> DatabaseInstance:
        described.append((region, identifier))
        return _writer(region, identifier)

    untouched = [ResourceStep(urn, "same", RDS_INSTANCE_TYPE)]
    assert refresh_promoted_replicas(stack, describe, untouched, lambda line: None) == [] and described == []
    updated = [ResourceStep(urn, "update", RDS_INSTANCE_TYPE)]
    assert refresh_promoted_replicas(stack, describe, updated, lambda line: None) == [urn]
    assert described == [(DR, stack.state[urn].inputs["identifier"])] and stack.replicas_in_state() == {}
    assert any(call.method == "refresh" and call.arguments["targets"] == (urn,) for call in stack.calls)


def _replica(region: str, identifier: str) -> DatabaseInstance:
    return DatabaseInstance(identifier, region, "arn", "available", "arn:source", (), None, True, None, {}, 7, None)


def test_a_replica_still_replicating_is_not_refreshed() -> None:
    stack = StandInStack(prod_config())
    (urn,) = stack.replicas_in_state()
    updated = [ResourceStep(urn, "update", RDS_INSTANCE_TYPE)]
    assert refresh_promoted_replicas(stack, _replica, updated, lambda line: None) == []
    assert not any(call.method == "refresh" for call in stack.calls)
