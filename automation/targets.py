"""Which resources an update may touch while a region is down.

During a regional outage anything that reaches the failed region hangs or
fails, so a failover update targets only the surviving region's resources,
the global ones (IAM, Route53: `automation.evaluate.GLOBAL`), the ones that
reach no cloud at all (components spanning both regions, random passwords)
and the root stack (so the stack outputs follow the update). The failed region's
resources, and the provider that would reach it, are never in the list; nor is
a global resource declared through the failed region's provider, since
targeting it makes the engine configure that provider (the program declares
every global resource through the DR region's provider, so there is none:
catalogue pulumi-aws.provider-configure-calls-aws).
`refuse_failed_region_targets` is the guard a runbook calls right before
`up` so that a hand-made or stale list cannot slip one in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from automation.errors import DrctlError
from automation.evaluate import GLOBAL, DeclaredResource, Evaluation
from automation.stack import root_stack_urn

# Packages whose resources live only in the state, whatever region is down.
LOCAL_PACKAGES = frozenset({"random", "tls", "time"})


def root_urn_of(evaluation: Evaluation) -> str:
    """The root stack's URN, with the stack and project the evaluation's URNs carry."""
    if not evaluation.resources:
        raise DrctlError("the program declared no resources; there is nothing to target")
    stack, project = evaluation.resources[0].urn.removeprefix("urn:pulumi:").split("::")[:2]
    return root_stack_urn(stack, project)


def _surviving_region(evaluation: Evaluation, failed_region: str) -> str:
    regions = (evaluation.config.primary_region, evaluation.config.dr_region)
    if failed_region not in regions:
        raise DrctlError(f"{failed_region} is not one of this stack's regions ({', '.join(regions)})")
    return regions[1] if failed_region == regions[0] else regions[0]


def surviving_region_targets(evaluation: Evaluation, failed_region: str) -> list[str]:
    """URNs an update may target while `failed_region` is down, in declaration order."""
    surviving = _surviving_region(evaluation, failed_region)
    unplaced = [r.urn for r in evaluation.resources if r.region is None and r.custom and not _local(r)]
    if unplaced:
        raise DrctlError(
            f"cannot tell which region {len(unplaced)} resource(s) live in, e.g. {unplaced[0]}",
            hint="give them an explicit regional provider so a failover can leave the failed region alone",
        )
    provider_regions = _provider_regions(evaluation)
    allowed = [
        r.urn
        for r in evaluation.resources
        if (r.region in (surviving, GLOBAL) or (r.region is None and (not r.custom or _local(r))))
        and not _touches(r, failed_region, provider_regions)
    ]
    return [root_urn_of(evaluation), *allowed]


def _local(resource: DeclaredResource) -> bool:
    """Resources computed by the engine itself (a random password) reach no region."""
    return resource.type.split(":", 1)[0] in LOCAL_PACKAGES


def _provider_regions(evaluation: Evaluation) -> dict[str, str | None]:
    """The region each provider of the program is configured for, by URN."""
    return {r.urn: r.region for r in evaluation.resources if r.type.startswith("pulumi:providers:")}


def _touches(resource: DeclaredResource, failed_region: str, provider_regions: Mapping[str, str | None]) -> bool:
    """A resource in the failed region, a provider configured for it, or a resource managed by such a provider.

    A global resource (IAM, Route53) is judged by its provider: targeting it makes the engine configure that
    provider, in that provider's region (catalogue: pulumi-aws.provider-configure-calls-aws).
    """
    return resource.region == failed_region or provider_regions.get(resource.provider) == failed_region


def refuse_failed_region_targets(evaluation: Evaluation, targets: Iterable[str], failed_region: str) -> None:
    """Raise unless every target is known to lie outside the failed region."""
    _surviving_region(evaluation, failed_region)
    declared = evaluation.by_urn()
    root = root_urn_of(evaluation)
    provider_regions = _provider_regions(evaluation)
    in_failed = [urn for urn in targets if urn in declared and _touches(declared[urn], failed_region, provider_regions)]
    unknown = [urn for urn in targets if urn not in declared and urn != root]
    if in_failed:
        raise DrctlError(
            f"refusing an update that targets {len(in_failed)} resource(s) in the failed region {failed_region} "
            f"(or managed through its provider), e.g. {in_failed[0]}",
            hint="target only the surviving region and global resources (automation.targets)",
        )
    if unknown:
        raise DrctlError(
            f"refusing an update that targets {len(unknown)} URN(s) the program does not declare, e.g. {unknown[0]}: "
            f"they may live in the failed region {failed_region}",
            hint="compute targets from the program evaluated with the config being applied",
        )
