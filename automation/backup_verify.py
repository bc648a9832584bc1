"""`drctl backup-verify`: prove, per region, that a recent database backup restores.

AWS itself restores the newest backups of each vault every day (restore testing,
`components/restore_testing.py`) and a validator reports each result to its
restore job. Against AWS, the command first reads those results per vault: the
latest test of each protected resource must have completed and been validated
within the daily schedule, or the region fails `restore-testing`.

It then restores one backup itself, on demand: for each region, pick the newest
(or a seeded random) backup of the database, check it (completed, encrypted with
the region's key, young enough for the daily schedule, copied to the other
region), restore it to a scratch RDS instance in the region's database subnets,
check that the instance comes up with an endpoint, and delete the scratch
instance whatever happened. Every check's result goes into a report (JSON and
Markdown); any failure makes the command exit non-zero.

Where the backups come from:
- against AWS: AWS Backup recovery points in the stack's vaults
  (`backupVaults` output); an RDS recovery point is an RDS snapshot, whose
  ARN `RestoreDBInstanceFromDBSnapshot` takes; restore testing results from
  `ListRestoreJobs` of each region's plan (`restoreTesting` output);
- in the sandbox: RDS snapshots in moto (moto has no Backup recovery points),
  taken and copied across regions the way the backup plan would; moto has no
  restore testing either, so the sandbox report lists it as not checked.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Protocol

import typer
from botocore.exceptions import ClientError

from automation.aws.clients import AwsClients, reaching
from automation.aws.waiting import Clock, Observation, WaitTimeoutError, wait_for
from automation.console import err_console
from automation.errors import DrctlError
from automation.report_files import RUN_REPORTS_DIR, os_error_text, unwritable_reason
from automation.timings import Op, latency
from components.config import PlatformConfig
from components.naming import db_subnet_group_name, physical_name
from components.restore_testing import MAX_RECOVERY_POINT_AGE

PURPOSE_TAG = {"Key": "dr-platform:purpose", "Value": "backup-verify"}
RESTORE_TESTING = "restore-testing"
CHECKS = ("status", "encryption", "age", "cross-region-copy", "restore", "cleanup")
"""The on-demand restore's checks; against AWS, `restore-testing` comes first."""
VALIDATED = "SUCCESSFUL"


@dataclass(frozen=True)
class Candidate:
    """One backup of the database in one region, from either catalogue."""

    region: str
    restore_from: str
    """What RestoreDBInstanceFromDBSnapshot takes: a snapshot id or ARN (a recovery point's ARN for RDS)."""
    source: str
    """The database it is a backup of (instance identifier or ARN): how a copy in the other region is matched."""
    status: str
    completed: bool
    encrypted: bool
    key_arn: str | None
    created_at: datetime


class Catalogue(Protocol):
    kind: str

    def candidates(self, region: str) -> list[Candidate]: ...


class RecoveryPointCatalogue:
    """AWS Backup recovery points of RDS resources in the stack's vaults."""

    kind = "AWS Backup recovery points"

    def __init__(self, clients: AwsClients, vaults: Mapping[str, Mapping[str, str]]) -> None:
        self._clients = clients
        self._vaults = vaults

    def candidates(self, region: str) -> list[Candidate]:
        pages = (
            self._clients.client("backup", region)
            .get_paginator("list_recovery_points_by_backup_vault")
            .paginate(BackupVaultName=self._vaults[region]["name"], ByResourceType="RDS")
        )
        return [
            Candidate(
                region=region,
                restore_from=point["RecoveryPointArn"],
                source=point.get("ResourceArn", ""),
                status=point.get("Status", ""),
                completed=point.get("Status") == "COMPLETED",
                encrypted=bool(point.get("IsEncrypted")),
                key_arn=point.get("EncryptionKeyArn"),
                created_at=point.get("CompletionDate") or point["CreationDate"],
            )
            for page in pages
            for point in page["RecoveryPoints"]
        ]


class SnapshotCatalogue:
    """RDS snapshots of the stack's databases (the sandbox's stand-in for recovery points)."""

    kind = "RDS snapshots (sandbox: moto has no AWS Backup recovery points)"

    def __init__(self, clients: AwsClients, database_identifiers: Sequence[str]) -> None:
        self._clients = clients
        self._identifiers = set(database_identifiers)

    def candidates(self, region: str) -> list[Candidate]:
        pages = self._clients.client("rds", region).get_paginator("describe_db_snapshots").paginate()
        return [
            Candidate(
                region=region,
                restore_from=snapshot["DBSnapshotIdentifier"],
                source=snapshot["DBInstanceIdentifier"],
                status=snapshot["Status"],
                completed=snapshot["Status"] == "available",
                encrypted=bool(snapshot.get("Encrypted")),
                key_arn=snapshot.get("KmsKeyId"),
                created_at=snapshot["SnapshotCreateTime"],
            )
            for page in pages
            for snapshot in page["DBSnapshots"]
            if snapshot["DBInstanceIdentifier"] in self._identifiers
        ]


class RestoreTestingResults:
    """What AWS Backup restore testing found in a region: the restore jobs of the region's plan."""

    def __init__(self, clients: AwsClients, restore_testing: Mapping[str, Mapping[str, Any]]) -> None:
        self._clients = clients
        self._plans = restore_testing

    def check(self, region: str, since: datetime) -> tuple[bool, str]:
        """The latest test of each resource since `since` completed and was validated; any failure fails."""
        plan = self._plans.get(region)
        if not plan:
            return False, "the stack declares no restore testing plan in this region (output restoreTesting)"
        pages = (
            self._clients.client("backup", region)
            .get_paginator("list_restore_jobs")
            .paginate(ByRestoreTestingPlanArn=plan["planArn"], ByCreatedAfter=since)
        )
        latest: dict[str, Mapping[str, Any]] = {}
        for job in sorted((job for page in pages for job in page["RestoreJobs"]), key=lambda j: j["CreationDate"]):
            latest[job.get("SourceResourceArn") or job["RestoreJobId"]] = job
        if not latest:
            return False, f"no restore test of {plan['plan']} since {since.isoformat()}"
        problems = [_test_problem(job) for job in latest.values()]
        failed = [problem for problem in problems if problem]
        if failed:
            return False, "; ".join(failed)
        return True, f"{len(latest)} resource(s) restored and validated by {plan['plan']} since {since.isoformat()}"


def _test_problem(job: Mapping[str, Any]) -> str:
    """Why one restore test does not count as passed ("" when it does)."""
    what = f"{job.get('ResourceType', '?')} {job.get('SourceResourceArn', '')} (job {job['RestoreJobId']})"
    status, validation = job.get("Status"), job.get("ValidationStatus")
    if status != "COMPLETED":
        return f"{what}: restore {status}: {job.get('StatusMessage', 'no message')}"
    if validation != VALIDATED:
        return f"{what}: validation {validation or 'never reported'}: {job.get('ValidationStatusMessage', '')}".rstrip(
            ": "
        )
    return ""


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str


@dataclass
class RegionVerification:
    region: str
    backup: str | None = None
    scratch_instance: str | None = None
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    def check(self, name: str, passed: bool, detail: str) -> None:
        self.checks.append(CheckResult(name, passed, detail))


@dataclass
class BackupVerification:
    mode: str
    catalogue: str
    started_at: datetime
    regions: list[RegionVerification]
    simulated: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(region.passed for region in self.regions)

    def failures(self) -> list[str]:
        return [
            f"{region.region}: {check.name} ({check.detail})"
            for region in self.regions
            for check in region.checks
            if not check.passed
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "simulation": self.mode == "sandbox",
            "simulated": list(self.simulated),
            "catalogue": self.catalogue,
            "started_at": self.started_at.isoformat(),
            "result": "passed" if self.passed else "failed",
            "regions": [
                {
                    "region": region.region,
                    "backup": region.backup,
                    "scratch_instance": region.scratch_instance,
                    "passed": region.passed,
                    "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in region.checks],
                }
                for region in self.regions
            ],
        }

    def to_markdown(self) -> str:
        label = " (SIMULATION)" if self.mode == "sandbox" else ""
        lines = [f"# Backup verification: {'passed' if self.passed else 'FAILED'}{label}", ""]
        if self.mode == "sandbox":
            lines += ["> Offline sandbox: moto stood in for AWS. Simulated:", *[f"> - {s}" for s in self.simulated], ""]
        lines += [f"- started: {self.started_at.isoformat()}", f"- backups: {self.catalogue}", ""]
        for region in self.regions:
            lines += [f"## {region.region}: {'passed' if region.passed else 'FAILED'}", ""]
            lines += [
                f"- backup: `{region.backup or '-'}`",
                f"- scratch instance: `{region.scratch_instance or '-'}`",
                "",
            ]
            lines += ["| check | result | detail |", "|---|---|---|"]
            lines += [f"| {c.name} | {'ok' if c.passed else 'FAILED'} | {c.detail} |" for c in region.checks]
            lines.append("")
        return "\n".join(lines)


@dataclass(frozen=True)
class Scratch:
    """Where scratch restores go; the sandbox leaves placement to moto's defaults."""

    subnet_groups: Mapping[str, str] = field(default_factory=dict)
    """Region -> the database subnet group a scratch instance is restored into."""


def verify_backups(
    clients: AwsClients,
    cfg: PlatformConfig,
    outputs: Mapping[str, Any],
    catalogue: Catalogue,
    *,
    clock: Clock,
    mode: str,
    restore_tests: RestoreTestingResults | None = None,
    scratch: Scratch | None = None,
    pick_random: bool = False,
    seed: int | None = None,
    restore_timeout_seconds: float = 3600,
    poll_seconds: float = 30,
    simulated: Sequence[str] = (),
) -> BackupVerification:
    """Verify each region's restore tests and newest (or a random) backup; never raises for a failed check."""
    chooser = random.Random(seed)
    started = clock.now()
    regions = [cfg.primary_region, cfg.dr_region]
    results = []
    for region in regions:
        other = next(r for r in regions if r != region)
        result = RegionVerification(region)
        if restore_tests is not None:
            try:
                with reaching(region):
                    result.check(RESTORE_TESTING, *restore_tests.check(region, started - MAX_RECOVERY_POINT_AGE))
            except (DrctlError, ClientError) as error:
                result.check(RESTORE_TESTING, False, f"cannot read the restore tests: {error}")
        _verify_region(
            clients,
            cfg,
            outputs,
            catalogue,
            result,
            other,
            clock=clock,
            chooser=chooser if pick_random else None,
            subnet_group=(scratch or Scratch()).subnet_groups.get(region),
            restore_timeout_seconds=restore_timeout_seconds,
            poll_seconds=poll_seconds,
        )
        results.append(result)
    return BackupVerification(mode, catalogue.kind, started, results, list(simulated))


def _verify_region(
    clients: AwsClients,
    cfg: PlatformConfig,
    outputs: Mapping[str, Any],
    catalogue: Catalogue,
    result: RegionVerification,
    other_region: str,
    *,
    clock: Clock,
    chooser: random.Random | None,
    subnet_group: str | None,
    restore_timeout_seconds: float,
    poll_seconds: float,
) -> None:
    region = result.region
    try:
        with reaching(region):
            found = sorted(catalogue.candidates(region), key=lambda c: (c.created_at, c.restore_from))
    except (DrctlError, ClientError) as error:
        result.check("status", False, f"cannot list backups: {error}")
        return
    if not found:
        result.check("status", False, f"no backup of the database found ({catalogue.kind})")
        return
    backup = chooser.choice(found) if chooser else found[-1]
    result.backup = backup.restore_from
    now = clock.now()

    result.check("status", backup.completed, f"status {backup.status}")
    expected_key = (outputs.get("kmsKeys") or {}).get(region)
    if not backup.encrypted:
        result.check("encryption", False, "not encrypted")
    elif expected_key and backup.key_arn != expected_key:
        result.check("encryption", False, f"encrypted with {backup.key_arn}, expected the region's key {expected_key}")
    else:
        result.check("encryption", True, f"encrypted with {backup.key_arn}")
    age = now - backup.created_at
    # The same bound restore testing's validator holds recovery points to.
    allowed = MAX_RECOVERY_POINT_AGE
    result.check("age", age <= allowed, f"{_hours(age)} old; the daily schedule allows {_hours(allowed)}")
    result.check("cross-region-copy", *_copy_in(catalogue, backup, other_region, now - allowed))
    _restore_and_check(clients, cfg, backup, result, clock, subnet_group, restore_timeout_seconds, poll_seconds)


def _copy_in(catalogue: Catalogue, backup: Candidate, other_region: str, since: datetime) -> tuple[bool, str]:
    try:
        with reaching(other_region):
            copies = [c for c in catalogue.candidates(other_region) if c.source == backup.source and c.completed]
    except (DrctlError, ClientError) as error:
        return False, f"cannot read {other_region}: {error}"
    recent = [c for c in copies if c.created_at >= since]
    if recent:
        return True, f"{len(recent)} recent copy(ies) in {other_region}, e.g. {recent[-1].restore_from}"
    return False, f"no completed copy of {backup.source} in {other_region} since {since.isoformat()}"


def scratch_identifier(cfg: PlatformConfig, region: str, at: datetime) -> str:
    """Unique per run and region, recognisable, under RDS's 63 characters."""
    return physical_name(cfg, region, f"verify-{at.strftime('%Y%m%d%H%M%S')}")


def _restore_and_check(
    clients: AwsClients,
    cfg: PlatformConfig,
    backup: Candidate,
    result: RegionVerification,
    clock: Clock,
    subnet_group: str | None,
    timeout_seconds: float,
    poll_seconds: float,
) -> None:
    region = result.region
    rds = clients.client("rds", region)
    scratch = scratch_identifier(cfg, region, clock.now())
    result.scratch_instance = scratch
    requested = False
    # In the stack's database subnets: an account may have no default VPC to restore into.
    placement = {"DBSubnetGroupName": subnet_group} if subnet_group else {}
    try:
        with reaching(region):
            rds.restore_db_instance_from_db_snapshot(
                DBInstanceIdentifier=scratch,
                DBSnapshotIdentifier=backup.restore_from,
                DBInstanceClass=cfg.db_instance_class,
                PubliclyAccessible=False,
                DeletionProtection=False,
                Tags=[PURPOSE_TAG],
                **placement,
            )
            requested = True

        def probe() -> Observation[dict[str, Any]]:
            instance = rds.describe_db_instances(DBInstanceIdentifier=scratch)["DBInstances"][0]
            return Observation(instance["DBInstanceStatus"] == "available", instance, instance["DBInstanceStatus"])

        instance = wait_for(
            f"scratch instance {scratch} in {region} to be available",
            probe,
            timeout_seconds=timeout_seconds,
            interval_seconds=poll_seconds,
            clock=clock,
        )
        address = (instance.get("Endpoint") or {}).get("Address")
        result.check("restore", bool(address), f"{scratch} available at {address}" if address else "no endpoint")
    except (DrctlError, ClientError, WaitTimeoutError) as error:
        result.check("restore", False, f"restore to {scratch} failed: {error}")
    finally:
        result.check("cleanup", *_delete_scratch(rds, region, scratch, requested))


def _delete_scratch(rds: Any, region: str, scratch: str, requested: bool) -> tuple[bool, str]:
    """Always attempted; a scratch instance that was never created counts as cleaned up."""
    try:
        with reaching(region):
            rds.delete_db_instance(DBInstanceIdentifier=scratch, SkipFinalSnapshot=True, DeleteAutomatedBackups=True)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "DBInstanceNotFound" and not requested:
            return True, "nothing to delete (the restore never started)"
        return False, f"could not delete {scratch}: {error}; delete it by hand"
    except DrctlError as error:
        return False, f"could not delete {scratch}: {error}; delete it by hand"
    return True, f"deleted {scratch} (no final snapshot)"


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


# --- the sandbox's backup plan -----------------------------------------------------------


def take_sandbox_backups(
    clients: AwsClients, outputs: Mapping[str, Any], cfg: PlatformConfig, at: datetime
) -> list[str]:
    """What the daily backup plan leaves behind, as RDS snapshots: the writer's, and its copy in the other region."""
    writer_region = next(region for region, entry in outputs["database"].items() if entry["role"] == "writer")
    other = cfg.dr_region if writer_region == cfg.primary_region else cfg.primary_region
    writer = outputs["database"][writer_region]["identifier"]
    snapshot_id = f"{writer}-daily-{at.strftime('%Y%m%d%H%M%S')}"
    snapshot = clients.client("rds", writer_region).create_db_snapshot(
        DBInstanceIdentifier=writer,
        DBSnapshotIdentifier=snapshot_id,
        Tags=[{"Key": "dr-platform:purpose", "Value": "daily"}],
    )["DBSnapshot"]
    clients.client("rds", other).copy_db_snapshot(
        SourceDBSnapshotIdentifier=snapshot["DBSnapshotArn"],
        TargetDBSnapshotIdentifier=f"{snapshot_id}-copy",
        KmsKeyId=outputs["kmsKeys"][other],
        SourceRegion=writer_region,
    )
    return [snapshot_id, f"{snapshot_id}-copy"]


# --- the command ------------------------------------------------------------------------


def run_in_sandbox(*, pick_random: bool, seed: int | None) -> BackupVerification:
    """Provision steady state in the sandbox, take the daily backups, verify them."""
    from automation.sandbox import SIMULATED, Sandbox

    with Sandbox.open(scale=0) as sandbox:
        outputs = sandbox.provision()
        take_sandbox_backups(sandbox.clients, outputs, sandbox.cfg, sandbox.clock.now())
        sandbox.clock.sleep(latency(Op.RDS_SNAPSHOT))  # the plan's snapshots are complete by the time one verifies
        identifiers = [entry["identifier"] for entry in outputs["database"].values()]
        return verify_backups(
            sandbox.clients,
            sandbox.cfg,
            outputs,
            SnapshotCatalogue(sandbox.clients, identifiers),
            clock=sandbox.clock,
            mode="sandbox",
            pick_random=pick_random,
            seed=seed,
            simulated=[
                *SIMULATED,
                "AWS Backup recovery points: RDS snapshots and their cross-region copies",
                "AWS Backup restore testing: not checked (moto has none); against AWS it is the first check",
            ],
        )


def run_against_stack(stack_name: str, *, pick_random: bool, seed: int | None) -> BackupVerification:
    """The real thing: the stack's outputs name the vaults and plans; boto3's standard credential chain."""
    from automation.stack import PulumiStack
    from components.config import parse_config

    stack = PulumiStack.select(stack_name)
    cfg = parse_config(stack.get_config())
    return verify_stack_backups(AwsClients(), cfg, stack.outputs(), pick_random=pick_random, seed=seed)


def verify_stack_backups(
    clients: AwsClients,
    cfg: PlatformConfig,
    outputs: Mapping[str, Any],
    *,
    clock: Clock | None = None,
    pick_random: bool = False,
    seed: int | None = None,
    poll_seconds: float = 30,
) -> BackupVerification:
    """Against AWS: restore testing results per vault, then an on-demand restore of each region's newest backup."""
    from automation.aws.waiting import SYSTEM_CLOCK

    return verify_backups(
        clients,
        cfg,
        outputs,
        RecoveryPointCatalogue(clients, outputs["backupVaults"]),
        clock=clock or SYSTEM_CLOCK,
        mode="aws",
        restore_tests=RestoreTestingResults(clients, outputs.get("restoreTesting") or {}),
        scratch=Scratch({cfg.region_of(role): db_subnet_group_name(cfg, role) for role in cfg.regions}),
        pick_random=pick_random,
        seed=seed,
        poll_seconds=poll_seconds,
    )


def write_reports(verification: BackupVerification, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = directory / f"backup-verify-{verification.mode}-{verification.started_at.strftime('%Y%m%dT%H%M%SZ')}"
    json_path, markdown_path = stem.with_suffix(".json"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(verification.to_dict(), indent=2) + "\n")
    markdown_path.write_text(verification.to_markdown() + "\n")
    return [json_path, markdown_path]


def command(
    sandbox: bool = typer.Option(False, "--sandbox", help="Run against the offline sandbox (moto) instead of AWS."),
    pick_random: bool = typer.Option(False, "--random", help="Verify a random backup per region, not the newest."),
    seed: int | None = typer.Option(None, help="Seed for --random, to repeat a pick."),
    stack: str = typer.Option("organization/dr-platform/prod", help="Fully qualified stack (ignored with --sandbox)."),
    report_dir: Annotated[
        Path, typer.Option("--report-dir", help="Where the JSON and Markdown reports are written.")
    ] = RUN_REPORTS_DIR,
    as_json: bool = typer.Option(False, "--json", help="Print the JSON report instead of a summary."),
) -> None:
    """Check each region's AWS restore tests, then restore its newest (or a random) backup to scratch and back."""
    # Checked before any restore (scratch instances cost time and money), so the results always have a place.
    problem = unwritable_reason(report_dir)
    if problem:
        raise DrctlError(
            f"--report-dir {report_dir} cannot take the reports: {problem}",
            hint="pass a writable --report-dir",
            exit_code=2,
        )
    if sandbox:
        verification = run_in_sandbox(pick_random=pick_random, seed=seed)
    else:
        verification = run_against_stack(stack, pick_random=pick_random, seed=seed)
    # The result reaches the terminal first: a report file that still cannot be written loses nothing.
    if as_json:
        typer.echo(json.dumps(verification.to_dict(), indent=2))
    else:
        typer.echo(verification.to_markdown())
    try:
        paths = write_reports(verification, report_dir)
    except OSError as error:
        err_console.print(
            f"warning: the reports could not be written to {report_dir} ({os_error_text(error)}); "
            "the report above is the result",
            markup=False,
            soft_wrap=True,
        )
    else:
        if not as_json:
            typer.echo(f"reports: {', '.join(str(path) for path in paths)}")
    if not verification.passed:
        raise DrctlError(
            "backup verification failed: " + "; ".join(verification.failures()),
            hint="each failed check is in the report; a scratch instance that could not be deleted is named there",
        )
