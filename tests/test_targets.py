"""A failover update never needs the failed region, not even to configure a provider.

catalogue: pulumi-aws.provider-configure-calls-aws
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from automation.errors import DrctlError
from automation.evaluate import GLOBAL, Evaluation
from automation.targets import refuse_failed_region_targets, surviving_region_targets
from tests.conftest import STATES, evaluate_state

PRIMARY, DR = "us-east-1", "us-west-2"


def _providers(evaluation: Evaluation) -> dict[str, str | None]:
    return {r.urn: r.region for r in evaluation.resources if r.type.startswith("pulumi:providers:")}


@pytest.mark.parametrize("state", STATES)
def test_every_aws_provider_is_configured_without_calling_aws(state):
    for provider in evaluate_state(state).of_type("pulumi:providers:aws"):
        assert provider.inputs["skipCredentialsValidation"] == "true"
        assert provider.inputs["skipRequestingAccountId"] == "true"
        assert provider.inputs["stsRegion"] == DR
        # The metadata service is the host's own endpoint: left to the default.
        assert "skipMetadataApiCheck" not in provider.inputs


@pytest.mark.parametrize("state", STATES)
def test_every_global_resource_is_declared_through_the_dr_provider(state):
    evaluation = evaluate_state(state)
    providers = _providers(evaluation)
    global_resources = [r for r in evaluation.resources if r.region == GLOBAL]
    assert {r.type.split(":")[1].split("/")[0] for r in global_resources} == {"iam", "route53"}
    assert {providers[r.provider] for r in global_resources} == {DR}


def test_no_failover_target_is_managed_through_the_failed_regions_provider():
    evaluation = evaluate_state("failed-over")
    providers = _providers(evaluation)
    declared = evaluation.by_urn()
    targets = surviving_region_targets(evaluation, PRIMARY)[1:]
    assert not [urn for urn in targets if providers.get(declared[urn].provider) == PRIMARY]
    # Every role, policy and record is in the list: none was left behind with the primary's provider.
    global_urns = {r.urn for r in evaluation.resources if r.region == GLOBAL}
    assert global_urns <= set(targets)


def test_a_global_resource_bound_to_the_failed_regions_provider_is_neither_targeted_nor_accepted():
    evaluation = evaluate_state("failed-over")
    role = evaluation.one("aws:iam/role:Role", "backup-service")
    primary = evaluation.one("pulumi:providers:aws", "aws-primary").urn
    rebound = dataclasses.replace(role, provider=primary)
    moved = Evaluation(
        evaluation.config, [rebound if r is role else r for r in evaluation.resources], evaluation.outputs
    )
    assert role.urn not in surviving_region_targets(moved, PRIMARY)
    with pytest.raises(DrctlError, match=r"failed region us-east-1 \(or managed through its provider\)"):
        refuse_failed_region_targets(moved, [role.urn], PRIMARY)
    # The same resource through the DR provider is fine.
    refuse_failed_region_targets(evaluation, [role.urn], PRIMARY)


def test_a_failover_creates_or_changes_nothing_in_iam():
    """IAM's control plane is in us-east-1: a failover out of it must not need it. Roles the DR region uses
    after a failover (the heartbeat writer's included) exist before it."""
    steady, failed_over = evaluate_state("steady").by_urn(), evaluate_state("failed-over").by_urn()
    touched = [
        urn
        for urn, r in failed_over.items()
        if r.type.startswith("aws:iam/") and (urn not in steady or steady[urn].inputs != r.inputs)
    ]
    assert touched == []


# Resources whose ARN terraform-provider-aws builds with the provider's account ID, which the providers here
# never look up (the provider's documentation of skip_requesting_account_id, and its source).
ACCOUNTLESS_ARNS = (
    "aws:ec2/launchTemplate:LaunchTemplate",
    "aws:ec2/eip:Eip",
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
)


@pytest.mark.parametrize("state", STATES)
def test_nothing_reads_an_arn_the_provider_builds_without_the_account(state):
    """With skipRequestingAccountId the provider's account ID is empty: only ARNs it builds itself lack it, and
    no input of the program reads one (catalogue: pulumi-aws.provider-configure-calls-aws)."""
    from automation.evaluate import mock_identity

    evaluation = evaluate_state(state)
    arns = {
        mock_identity(r.type, r.name, r.inputs, r.region)[1]: r.name
        for r in evaluation.resources
        if r.type in ACCOUNTLESS_ARNS
    }
    assert len(arns) > 10
    readers = [
        (resource.name, arns[arn])
        for resource in evaluation.resources
        for arn in arns
        if arn in json.dumps(resource.inputs, default=str)
    ]
    assert readers == []
