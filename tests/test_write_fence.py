"""The write fence and read-only switches against an RDS whose parameter groups wait for a restart or fail,
and whose instances are not always available for a reboot (review B2, R4)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from automation.aws import actions, readiness
from automation.aws.actions import AwsActionError, RebootRefusedError
from automation.aws.readiness import Status
from automation.errors import DrctlError
from automation.runbooks.context import DrAws, RunbookSettings
from tests.fake_clock import FakeClock, fixed_clock

REGION, GROUP, WRITER = "us-east-1", "prod-use1-pg-g1-params", "prod-use1-pg-g1"


class FakeRds:
    """One instance and its parameter group, with RDS's statuses: a static change leaves the group
    pending-reboot until a restart; a reboot is refused unless the instance is available."""

    def __init__(self, clock: FakeClock, *, apply_status: str = "in-sync", status: str = "available") -> None:
        self.clock = clock
        self.apply_status = apply_status
        self.status = status
        self.read_only = "0"
        self.modified: list[str] = []
        self.reboots: list[Any] = []
        self.restart_seconds = 60.0
        self.available_at: Any = None
        """When a transient status (backing-up) ends."""

    def client(self, service: str, region: str) -> FakeRds:
        return self

    def _instance_status(self) -> str:
        now = self.clock.now()
        if self.reboots and now < self.reboots[-1] + timedelta(seconds=self.restart_seconds):
            return "rebooting"
        if self.available_at is not None and now >= self.available_at:
            self.status, self.available_at = "available", None
        return self.status

    def describe_db_instances(self, DBInstanceIdentifier: str) -> dict[str, Any]:  # noqa: N803
        status = self._instance_status()
        if self.reboots and status == "available" and self.apply_status == "pending-reboot":
            self.apply_status = "in-sync"  # the restart applied the static changes
        return {
            "DBInstances": [
                {
                    "DBInstanceIdentifier": WRITER,
                    "DBInstanceArn": f"arn:aws:rds:{REGION}:123456789012:db:{WRITER}",
                    "DBInstanceStatus": status,
                    "DBParameterGroups": [{"DBParameterGroupName": GROUP, "ParameterApplyStatus": self.apply_status}],
                }
            ]
        }

    def get_paginator(self, name: str) -> Any:
        rds = self

        class Pages:
            def paginate(self, **_: Any) -> list[dict[str, Any]]:
                parameter = {"ParameterName": actions.READ_ONLY_PARAMETER, "ParameterValue": rds.read_only}
                return [{"Parameters": [parameter]}]

        return Pages()

    def modify_db_parameter_group(self, DBParameterGroupName: str, Parameters: list[dict[str, Any]]) -> None:  # noqa: N803
        self.read_only = Parameters[0]["ParameterValue"]
        self.modified.append(self.read_only)

    def reboot_db_instance(self, DBInstanceIdentifier: str, ForceFailover: bool) -> None:  # noqa: N803
        status = self._instance_status()
        if status != "available":
            raise ClientError(
                {"Error": {"Code": "InvalidDBInstanceState", "Message": f"Instance is in state {status}"}},
                "RebootDBInstance",
            )
        self.reboots.append(self.clock.now())

    def describe_events(self, **_: Any) -> dict[str, Any]:
        restarted = [at + timedelta(seconds=self.restart_seconds) for at in self.reboots]
        done = [at for at in restarted if at <= self.clock.now()]
        return {"Events": [{"Message": actions.RESTARTED_EVENT, "Date": at} for at in done]}


def _aws(rds: FakeRds) -> DrAws:
    return DrAws(rds, rds.clock, RunbookSettings(poll_seconds=10, reboot_timeout_seconds=600))  # type: ignore[arg-type]


def test_allow_writes_on_a_group_waiting_for_a_restart_does_not_wait_for_in_sync() -> None:
    """catalogue: rds.parameter-apply-status, rds.promotion-restarts-the-instance (a replica about to be promoted)"""
    rds = FakeRds(fixed_clock(), apply_status="pending-reboot")
    outcome = actions.allow_writes(rds, REGION, GROUP, WRITER, timeout_seconds=60, clock=rds.clock)  # type: ignore[arg-type]
    assert not outcome.changed and rds.clock.sleeps == []
    assert "static changes that apply at the next restart" in outcome.detail


@pytest.mark.parametrize("broken", ["failed-to-apply", "pending-database-upgrade"])
def test_a_group_no_wait_resolves_is_an_error_naming_the_group(broken: str) -> None:
    """catalogue: rds.parameter-apply-status"""
    rds = FakeRds(fixed_clock(), apply_status=broken)
    with pytest.raises(AwsActionError, match=f"parameter group {GROUP} is {broken} on {WRITER}") as raised:
        actions.set_read_only(rds, REGION, GROUP, WRITER, timeout_seconds=60, clock=rds.clock)  # type: ignore[arg-type]
    assert rds.modified == [] and "describe-events" in (raised.value.hint or "")


def test_the_fence_reboots_a_pending_reboot_group_first_and_checks_in_sync_after_the_restart() -> None:
    """catalogue: rds.parameter-apply-status, rds.reboot-ends-every-session"""
    rds = FakeRds(fixed_clock(), apply_status="pending-reboot")
    since = rds.clock.now()
    fenced = _aws(rds).fence_writer(REGION, GROUP, WRITER, since)
    assert rds.modified == ["1"] and len(rds.reboots) == 1 and rds.reboots[0] == since  # no wait before the reboot
    assert rds.apply_status == "in-sync" and "in sync" in fenced["verified"]


def test_the_fence_waits_out_a_backup_before_rebooting() -> None:
    """catalogue: rds.reboot-needs-available"""
    rds = FakeRds(fixed_clock(), status="backing-up")
    backup_ends = rds.available_at = rds.clock.now() + timedelta(seconds=120)
    _aws(rds).fence_writer(REGION, GROUP, WRITER, rds.clock.now())
    assert rds.reboots == [backup_ends]


@pytest.mark.parametrize(("status", "available_in"), [("storage-full", None), ("backing-up", 3600)])
def test_a_refused_reboot_puts_writes_back_on_in_a_planned_switchover(status: str, available_in: int | None) -> None:
    """catalogue: rds.reboot-needs-available"""
    rds = FakeRds(fixed_clock(), status=status)
    if available_in:
        rds.available_at = rds.clock.now() + timedelta(seconds=available_in)
    with pytest.raises(DrctlError, match=f"{WRITER} in {REGION} was not fenced: .*takes writes again") as raised:
        _aws(rds).fence_writer(REGION, GROUP, WRITER, rds.clock.now(), revert_if_not_fenced=True)
    assert isinstance(raised.value.__cause__, RebootRefusedError)
    assert rds.reboots == [] and rds.modified == ["1", "0"] and rds.read_only == "0"


def test_a_former_writer_whose_reboot_is_refused_stays_read_only() -> None:
    """catalogue: rds.reboot-needs-available"""
    rds = FakeRds(fixed_clock(), status="storage-full")
    with pytest.raises(RebootRefusedError, match="storage-full: RDS reboots only an available instance"):
        _aws(rds).fence_writer(REGION, GROUP, WRITER, rds.clock.now())
    assert rds.read_only == "1" and rds.reboots == []


def test_a_reboot_refused_by_rds_itself_is_a_refusal() -> None:
    """RDS answers InvalidDBInstanceState although the instance read available (it changed in between)."""
    rds = FakeRds(fixed_clock())
    original = rds.reboot_db_instance

    def refuse(**kwargs: Any) -> None:
        rds.status = "modifying"
        original(**kwargs)

    rds.reboot_db_instance = refuse  # type: ignore[method-assign]
    with pytest.raises(DrctlError, match="InvalidDBInstanceState"):
        _aws(rds).fence_writer(REGION, GROUP, WRITER, rds.clock.now(), revert_if_not_fenced=True)
    assert rds.read_only == "0"


@pytest.mark.parametrize(
    ("apply_status", "expected"),
    [("pending-reboot", Status.WARNING), ("failed-to-apply", Status.FAILING), ("applying", Status.OK)],
)
def test_the_preflight_role_reading_warns_on_a_group_waiting_for_a_restart(apply_status: str, expected: Status) -> None:
    """catalogue: rds.parameter-apply-status (the failover preflight reads it: a warning passes, a failure refuses)"""
    rds = FakeRds(fixed_clock(), apply_status=apply_status)
    reading = readiness.database_role(rds, REGION, WRITER, expected_role="writer")  # type: ignore[arg-type]
    assert reading.status is expected
    assert (f"parameter group {GROUP} {apply_status}" in reading.detail) is (expected is not Status.OK)
