"""A promotion the state does not know about: an update killed or cancelled after RDS promoted the replica.

The provider promotes a replica whenever the state still records
`replicate_source_db` and the program dropped it, calling PromoteReadReplica
with no tolerance for an instance that is already standalone; RDS refuses that
call and the update never gets to the rest (catalogue:
pulumi-aws.promotion-follows-the-recorded-source, rds.promote-needs-a-replica).
Before such an update, each instance it would promote is read in AWS; one that
is already a standalone writer has just that resource refreshed, so the state
says what AWS says and the update does not promote it again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from automation.aws.readiness import WRITER, DatabaseInstance
from automation.stack import RDS_INSTANCE_TYPE, ResourceStep, StackAdapter


def refresh_promoted_replicas(
    stack: StackAdapter,
    describe: Callable[[str, str], DatabaseInstance],
    changed: Sequence[ResourceStep],
    log: Callable[[str], None],
) -> list[str]:
    """Refresh each instance the previewed update changes that the state records as a replica and AWS already
    shows as a standalone writer (`describe(region, identifier)`); returns their URNs."""
    updated = {step.urn for step in changed if step.type == RDS_INSTANCE_TYPE and step.op == "update"}
    promoted = [
        urn
        for urn, recorded in stack.replicas_in_state().items()
        if urn in updated and describe(recorded.region, recorded.identifier).role == WRITER
    ]
    if promoted:
        log(
            "already promoted in AWS while the state still records a replica (an interrupted update): refreshing "
            + ", ".join(promoted)
        )
        stack.refresh(promoted, on_output=log, message="drctl: record a promotion an interrupted update made")
    return promoted
