"""The sandbox's RDS is as strict as RDS about parameter groups and reboots (review B2, R4; sandbox leniencies
3 and 4): a static change waits for a restart, a broken group fails to apply, a reboot needs `available`."""

from __future__ import annotations

from datetime import timedelta

import pytest
from botocore.exceptions import ClientError

from automation.aws.actions import RebootRefusedError
from automation.errors import DrctlError
from automation.runbooks.context import DrAws, RunbookSettings
from automation.sandbox import Sandbox
from components.naming import parameter_group_of

PRIMARY = "us-east-1"


@pytest.fixture
def sandbox(provisioned_sandbox: Sandbox) -> Sandbox:
    return provisioned_sandbox


def _apply_status(sandbox: Sandbox, writer: str) -> str:
    rds = sandbox.clients.client("rds", PRIMARY)
    return rds.describe_db_instances(DBInstanceIdentifier=writer)["DBInstances"][0]["DBParameterGroups"][0][
        "ParameterApplyStatus"
    ]


def test_the_sandbox_keeps_static_changes_pending_until_a_restart_and_refuses_a_reboot_while_busy(
    sandbox: Sandbox,
) -> None:
    """catalogue: rds.parameter-apply-status, rds.reboot-needs-available"""
    writer = sandbox.stack.outputs()["database"][PRIMARY]["identifier"]
    group = parameter_group_of(writer)
    rds = sandbox.clients.client("rds", PRIMARY)
    rds.modify_db_parameter_group(
        DBParameterGroupName=group,
        Parameters=[{"ParameterName": "max_connections", "ParameterValue": "500", "ApplyMethod": "pending-reboot"}],
    )
    sandbox.clock.sleep(600)
    assert _apply_status(sandbox, writer) == "pending-reboot"

    # RDS's own work (a backup) makes the instance unavailable: a reboot is refused, the fence reverts.
    now = sandbox.clock.now()
    sandbox.simulated.rds.holds[writer] = [(now, now + timedelta(hours=2), "backing-up")]
    with pytest.raises(ClientError, match="InvalidDBInstanceState"):
        rds.reboot_db_instance(DBInstanceIdentifier=writer)
    aws = DrAws(sandbox.clients, sandbox.clock, RunbookSettings(poll_seconds=15, reboot_timeout_seconds=600))
    with pytest.raises(DrctlError, match="was not fenced") as refused:
        aws.fence_writer(PRIMARY, group, writer, now, revert_if_not_fenced=True)
    assert isinstance(refused.value.__cause__, RebootRefusedError)

    # Once available, the fence reboots without waiting for in-sync, and the restart applies the static change.
    sandbox.simulated.rds.holds.clear()
    fenced = aws.fence_writer(PRIMARY, group, writer, sandbox.clock.now())
    assert fenced["changed"] and "in sync" in fenced["verified"]
    assert _apply_status(sandbox, writer) == "in-sync"

    sandbox.simulated.rds.broken_groups.add(group)
    assert _apply_status(sandbox, writer) == "failed-to-apply"
