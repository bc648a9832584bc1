"""The DR commands of drctl: status, failover, fence-former-region, failback prepare|switch|rollback,
reconcile-dns, break-lock, state show|sync-file|init|clear-pending, deploy-gate.

Registered on the app in `automation.cli`. Each command builds an
`Environment` (the stack adapter, the AWS side, the clock, the control store,
the operator, the checkout gate) with `open_environment`, which tests and the
sandbox replace.

Real runs: AWS calls go to AWS (no endpoint override: that exists only in the
sandbox), the operator is the caller's ARN from STS, and the journal, the lock,
the reports and the DR state authority live in the DR-region S3 control store
(`--journal s3://...`, or derived from an S3 `PULUMI_BACKEND_URL`); a local
directory only with an explicit `--local-journal DIR`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

from automation.aws.clients import AwsClients, reaching
from automation.aws.readiness import Status
from automation.console import console, err_console
from automation.dr_state import (
    DrStateAuthority,
    DrStateRecord,
    config_of,
    differences,
    dr_keys,
    stack_file,
    steady_default_problems,
    sync_stack_file,
    with_dr_keys,
)
from automation.errors import DrctlError, ProcessStillRunningError
from automation.journal import (
    CI_DEPLOY_HOLDER,
    CONTROL_STORE_PREFIX,
    Clock,
    CorruptJournalError,
    DocumentStore,
    Journal,
    RunParameters,
    RunStatus,
    StackLock,
    StoreUnavailableError,
    SystemClock,
    iso,
    local_store,
    s3_store,
    to_json_bytes,
)
from automation.report_files import RUN_REPORTS_DIR, os_error_text
from automation.runbook import Runbook, RunbookEngine, RunContext, RunFailedError, RunOutcome
from automation.runbooks.context import FOLLOW_UPS, NOT_RECOVERED, RESULT, WARNINGS, DrAws, DrContext
from automation.stack import PROJECT_DIR
from automation.stack_standin import StandInStack

ROLLED_BACK_EXIT = 3
NOT_READY_EXIT = 2
NOT_RECOVERED_EXIT = 5
"""The run succeeded but left a part not recovered (a cache still a read-only secondary): act on the follow-ups."""

StackOption = Annotated[
    str | None,
    typer.Option(
        "--stack",
        envvar="DRCTL_STACK",
        help="Fully qualified stack, ORG/dr-platform/STACK (env DRCTL_STACK). Never created by drctl.",
    ),
]
JournalOption = Annotated[
    str | None,
    typer.Option(
        "--journal",
        envvar="DRCTL_JOURNAL",
        help="The control store: s3://BUCKET/PREFIX in the DR region, where the journal, the lock, the run reports "
        "and the DR state authority live, so they survive the primary region and every operator and CI see the "
        "same lock. Default: s3://<bucket>/drctl of an s3:// PULUMI_BACKEND_URL. Env DRCTL_JOURNAL.",
    ),
]
LocalJournalOption = Annotated[
    Path | None,
    typer.Option(
        "--local-journal",
        help="Keep the control store in this local directory instead (a single operator's rehearsal: another "
        "laptop or CI would not see this lock).",
    ),
]
UnreviewedOption = Annotated[
    str | None,
    typer.Option(
        "--unreviewed-checkout-reason",
        help="Update the stack from a checkout that is not a clean main (a hotfix in an emergency); the reason "
        "is recorded in the journal and the report.",
    ),
]
ReportDirOption = Annotated[
    Path, typer.Option("--report-dir", help="Also write each run's JSON and Markdown report here.")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines (progress goes to stderr).")]
DryRunOption = Annotated[
    bool,
    typer.Option("--dry-run", help="Print the steps, run the read-only preflight checks and previews; change nothing."),
]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed with --json).")]
AbandonOption = Annotated[
    bool,
    typer.Option(
        "--abandon-unfinished",
        help="Start anew even though an unfinished run with other parameters (or another runbook) is in the "
        "journal; that run is archived as abandoned. Check what its done steps changed first.",
    ),
]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why you run this; kept in the journal, the report and the notification.")
]
DEFAULT_REPORT_DIR = RUN_REPORTS_DIR
DEPLOY_BLOCKED_EXIT = 4
"""deploy-gate: a runbook holds the stack or an unfinished run exists; CI must not deploy now."""


@dataclass
class Environment:
    ctx: DrContext
    store: DocumentStore
    simulation: bool = False
    operator: str = "sandbox"
    """Who runs drctl: the caller's ARN from STS on real runs."""
    checkout_gate: Callable[[str | None], dict[str, str]] = lambda _reason: {}
    """Refuses a checkout that is not the reviewed main (real runs); returns what the run records."""
    project_dir: Path = PROJECT_DIR


def control_store_location(journal: str | None, local_journal: Path | None) -> str:
    """The s3:// control store, or an explicitly local directory; a clear error when neither is known."""
    if local_journal is not None:
        if journal:
            raise DrctlError("--journal and --local-journal are exclusive", hint="pass one of them")
        return str(local_journal)
    if journal:
        if not journal.startswith("s3://"):
            raise DrctlError(
                f"--journal {journal} is not an s3:// location",
                hint="the control store must outlive this machine and the primary region: use s3://BUCKET/PREFIX in "
                "the DR region, or --local-journal DIR to keep it here on purpose",
            )
        return journal
    backend = os.environ.get("PULUMI_BACKEND_URL", "")
    if backend.startswith("s3://"):
        bucket = backend.removeprefix("s3://").split("/", 1)[0].split("?", 1)[0]
        return f"s3://{bucket}/{CONTROL_STORE_PREFIX}"
    raise DrctlError(
        "no control store for the journal and the lock",
        hint="pass --journal s3://BUCKET/PREFIX (the DR-region bucket of the Pulumi state; env DRCTL_JOURNAL), or "
        "--local-journal DIR for a single operator's rehearsal",
    )


class UnconfiguredStore:
    """Stands where no control store was given: any use raises the error that says how to give one."""

    def __init__(self, error: DrctlError) -> None:
        self.error = error

    @property
    def location(self) -> str:
        return "(no control store)"

    def read(self, key: str) -> Any:
        raise self.error

    def create(self, key: str, data: bytes) -> str:
        raise self.error

    def replace(self, key: str, data: bytes, expected_version: str | None) -> str:
        raise self.error

    def delete(self, key: str, expected_version: str | None = None) -> None:
        raise self.error


def journal_store(location: str, stack: str, dr_region: str, clients: AwsClients | None = None) -> DocumentStore:
    """A local directory, or s3://bucket/prefix through the DR region's client (it must outlive the primary)."""
    if location.startswith("s3://"):
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        if not bucket:
            raise DrctlError(f"--journal {location} names no bucket", hint="use s3://BUCKET/PREFIX")
        client = (clients or AwsClients(None)).client("s3", dr_region)
        return s3_store(stack, bucket, prefix or CONTROL_STORE_PREFIX, client=client)
    return local_store(stack, root=Path(location))


def caller_identity(clients: AwsClients, region: str) -> str:
    """The operator: the ARN STS says the credentials belong to (an assumed role names its session)."""
    try:
        with reaching(region):
            return str(clients.client("sts", region).get_caller_identity()["Arn"])
    except Exception as error:
        raise DrctlError(
            f"cannot tell who you are: STS GetCallerIdentity in {region} failed ({error})",
            hint="drctl records the caller's ARN in the journal and the lock: log in (aws sso login, or assume "
            "the DR operator role) and retry",
        ) from error


def default_environment(stack: str | None, journal: str | None, local_journal: Path | None) -> Environment:
    """The stack through the CLI, with the DR state authority's keys written into its stack file first."""
    from automation.checkout import require_reviewed_checkout
    from automation.stack import PulumiStack, check_stack_name

    name = check_stack_name(require_stack(stack))
    clock = SystemClock()
    stack_adapter = PulumiStack.select(name, PROJECT_DIR, policy_packs=[str(PROJECT_DIR / "policy")])
    ctx = DrContext(stack_adapter, DrAws(AwsClients(None), clock), clock)
    dr_region = ctx.config().dr_region
    try:
        location = control_store_location(journal, local_journal)
    except DrctlError as missing:
        store: DocumentStore = UnconfiguredStore(missing)  # `status` reads no journal; the others fail on first use
        err_console.print(
            f"warning: no control store, so the DR keys are the checkout's, not the authority's: {missing}"
        )
    else:
        store = journal_store(location, name, dr_region, ctx.aws.clients)
        try:
            apply_authority(store, name, stack_adapter.project_dir)
        except StoreUnavailableError as unreachable:  # `status` still reads AWS; the lock refuses everything else
            err_console.print(f"warning: the DR keys are the checkout's: {unreachable}", markup=False)
    env = Environment(
        ctx,
        store,
        operator=caller_identity(ctx.aws.clients, dr_region),
        checkout_gate=lambda reason: require_reviewed_checkout(PROJECT_DIR, reason, name),
    )
    ctx.record_dr_state = dr_state_recorder(env)
    ctx.record_traffic_fence = traffic_fence_recorder(env)
    return env


def apply_authority(store: DocumentStore, stack: str, project_dir: Path) -> None:
    """Write the authority's DR keys into the stack file the CLI reads, so this run sees where the platform stands.

    catalogue: pulumi-cli.config-in-project-stack-file
    """
    record = DrStateAuthority(store, stack).read()
    path = stack_file(project_dir, stack)
    if record is None:
        err_console.print(
            f"warning: no DR state authority for {stack} yet: using the DR keys of {path} (drctl state init)",
            markup=False,
        )
        return
    changed = sync_stack_file(path, record)
    if changed:
        err_console.print(
            f"{path.name}: DR keys from the authority (run {record.run_id}, {record.written_at}): "
            + "; ".join(changed),
            markup=False,
            soft_wrap=True,
        )


open_environment: Callable[[str | None, str | None, Path | None], Environment] = default_environment
"""Replaced by tests (stand-in stack, fake AWS) and by the sandbox."""


def dr_state_recorder(env: Environment) -> Callable[[RunContext, Mapping[str, str]], None]:
    """What DrContext calls before it writes DR keys to the stack config: the authority goes first."""
    authority = DrStateAuthority(env.store, env.ctx.stack.fully_qualified_name)

    def record(run: RunContext, keys: Mapping[str, str]) -> None:
        authority.write(keys, run_id=run.run_id, operator=run.parameters.operator, at=env.ctx.clock.now())

    return record


def traffic_fence_recorder(env: Environment) -> Callable[[RunContext, bool], None]:
    """What the fence steps call: the fence publisher puts the authority's value every minute."""
    authority = DrStateAuthority(env.store, env.ctx.stack.fully_qualified_name)

    def record(run: RunContext, raised: bool) -> None:
        authority.write_traffic_fence(
            raised=raised, run_id=run.run_id, operator=run.parameters.operator, at=env.ctx.clock.now()
        )

    return record


def require_stack(stack: str | None) -> str:
    if not stack:
        raise DrctlError(
            "no stack given",
            hint="pass --stack ORG/dr-platform/STACK (e.g. organization/dr-platform/prod) or set DRCTL_STACK",
        )
    return stack


# --- status -----------------------------------------------------------------------------------------

_STATUS_STYLE = {
    Status.OK: "green",
    Status.WARNING: "yellow",
    Status.UNKNOWN: "yellow",
    Status.FAILING: "bold red",
    Status.UNREACHABLE: "bold red",
}


def status(
    stack: StackOption = None,
    journal: JournalOption = None,
    local_journal: LocalJournalOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the DR state and live readiness of both regions.

    Reads the stack config and outputs, then replica lag vs RPO, health checks, recovery points,
    S3 replication, the global datastore's actual primary and DR compute.

    Exit code 0 when ready, 2 when a reading is failing or its region unreachable.
    """
    from automation.runbooks.status import read_status

    env = open_environment(stack, journal, local_journal)
    report = read_status(env.ctx)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2, default=str))
    else:
        cfg = report.config
        console.print(
            f"[bold]{report.stack}[/bold]: drState [bold]{cfg.dr_state.value}[/bold], active region "
            f"[bold]{cfg.active_region}[/bold] (primary {cfg.primary_region}, DR {cfg.dr_region}); outputs say "
            f"{report.outputs_state[0]}/{report.outputs_state[1]}"
        )
        table = Table(title=f"readiness at {report.at}", title_justify="left")
        for column in ("check", "region", "subject", "status", "detail"):
            table.add_column(column, overflow="fold")
        for reading in report.readings:
            style = _STATUS_STYLE[reading.status]
            table.add_row(
                reading.check,
                reading.region,
                reading.subject,
                f"[{style}]{reading.status.value}[/{style}]",
                reading.detail,
            )
        console.print(table)
        verdict = "[green]READY[/green]" if report.ready else "[bold red]NOT READY[/bold red]"
        console.print(f"{verdict} (worst reading: {report.overall.value}; RPO {cfg.rpo_seconds} s)")
    if not report.ready:
        raise typer.Exit(NOT_READY_EXIT)


# --- running a runbook ------------------------------------------------------------------------------


def _engine(env: Environment, as_json: bool) -> RunbookEngine:
    printer = err_console if as_json else console
    return RunbookEngine(
        env.ctx.stack.fully_qualified_name,
        env.store,
        clock=env.ctx.clock,
        output=lambda line: printer.print(line, markup=False, highlight=False, soft_wrap=True),
        # A stand-in stack (tests, the sandbox) changes no real infrastructure: its reports say so.
        simulation=env.simulation or isinstance(env.ctx.stack, StandInStack),
    )


def _parameters(
    env: Environment,
    reason: str | None,
    *,
    mode: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    unreviewed_reason: str | None = None,
    options: Mapping[str, str] | None = None,
) -> RunParameters:
    """The run's parameters; a real (not dry) run first passes the checkout gate, whose verdict the attempt records
    (never compared: a resume from another checkout, or with an override, is the same run)."""
    recorded = {} if dry_run else env.checkout_gate(unreviewed_reason)
    return RunParameters(
        reason=reason or "(no reason given)",
        operator=env.operator,
        mode=mode,
        force=force,
        options=dict(options or {}),
        attempt=recorded,
    )


def _confirm(question: str, yes: bool, dry_run: bool, as_json: bool) -> None:
    if yes or dry_run:
        return
    if as_json:
        raise DrctlError("--json cannot ask for confirmation", hint="add --yes")
    typer.confirm(question, abort=True)


def _copy_reports(store: DocumentStore, run_id: str, report_dir: Path) -> tuple[list[str], str | None]:
    """Copy the run's reports from the control store to `report_dir`: the paths written, and why not if not."""
    written = []
    try:
        for suffix in (".json", ".md"):
            found = store.read(f"reports/{run_id}{suffix}")
            if found is not None:
                report_dir.mkdir(parents=True, exist_ok=True)
                path = report_dir / f"{run_id}{suffix}"
                path.write_bytes(found.data)
                written.append(str(path))
    except OSError as error:
        return written, os_error_text(error)
    return written, None


def _warn_reports_not_copied(store: DocumentStore, run_id: str, report_dir: Path, problem: str) -> None:
    """The run's outcome stands: a local copy that failed is a warning naming where the reports still are."""
    err_console.print(
        f"warning: the reports of {run_id} could not be written to {report_dir} ({problem}); they are kept in "
        f"the control store: {store.location}/reports/{run_id}.json and .md",
        markup=False,
        soft_wrap=True,
    )


def _stored_report(store: DocumentStore, run_id: str) -> dict[str, Any] | None:
    found = store.read(f"reports/{run_id}.json")
    return json.loads(found.data) if found else None


def _run(
    env: Environment,
    report_dir: Path,
    as_json: bool,
    execute: Callable[[RunbookEngine], tuple[str, RunOutcome]],
) -> None:
    """Run, copy the reports, print the outcome; a rollback exits with 3.

    The exit code says what happened to the platform: a report that could not be copied to `report_dir`
    is a warning (the control store keeps it, and the Markdown report is printed), never a failed run.
    """
    engine = _engine(env, as_json)
    try:
        result, outcome = execute(engine)
    except RunFailedError as failure:
        run_id = failure.run.run_id
        paths, problem = _copy_reports(env.store, run_id, report_dir)
        if paths:
            err_console.print(f"reports: {', '.join(paths)}")
        if problem:
            _warn_reports_not_copied(env.store, run_id, report_dir, problem)
        raise
    if outcome.status == "planned":
        if as_json:
            typer.echo(json.dumps({"result": "planned", "plan": outcome.plan}, indent=2))
        return
    run = outcome.run
    copied = run and outcome.status != "already-completed"
    paths, problem = _copy_reports(env.store, run.run_id, report_dir) if copied else ([], None)
    report = _stored_report(env.store, run.run_id) if run else None
    if as_json:
        typer.echo(
            json.dumps(
                {"result": result, "message": outcome.message, "reports": paths, "report": report},
                indent=2,
                default=str,
            )
        )
    else:
        _print_outcome(result, outcome, report, paths)
    if problem and run:
        _warn_reports_not_copied(env.store, run.run_id, report_dir, problem)
        found = env.store.read(f"reports/{run.run_id}.md")
        if found is not None and not as_json:  # --json already printed the whole report
            typer.echo(found.data.decode())
    if result == "rolled-back":
        raise typer.Exit(ROLLED_BACK_EXIT)
    if result == "succeeded" and ((report or {}).get("measurements") or {}).get(NOT_RECOVERED):
        raise typer.Exit(NOT_RECOVERED_EXIT)


def _run_runbook(
    env: Environment,
    runbook: Runbook,
    parameters: RunParameters,
    *,
    dry_run: bool,
    abandon_unfinished: bool = False,
    report_dir: Path,
    as_json: bool,
) -> None:
    """`_run` for a runbook whose result is the status of its run (everything but a failback switch or rollback)."""

    def execute(engine: RunbookEngine) -> tuple[str, RunOutcome]:
        outcome = engine.run(runbook, parameters, dry_run=dry_run, abandon_unfinished=abandon_unfinished)
        return outcome.status, outcome

    _run(env, report_dir, as_json, execute)


def _print_outcome(result: str, outcome: RunOutcome, report: dict[str, Any] | None, paths: list[str]) -> None:
    if result == "rolled-back":
        cause = (report or {}).get("measurements", {}).get("rollback_cause") or "see the report"
        console.print(
            Panel(
                f"The failback switch did not hold and was ROLLED BACK: the DR region serves again.\ncause: {cause}",
                title="ROLLED BACK",
                style="bold red",
            )
        )
    else:
        console.print(f"[green]{outcome.message}[/green]")
    if report:
        for label, key in (("measured RTO", "rto"), ("data-loss window", "data_loss_window")):
            objective = report[key]
            if objective["measured_seconds"] is not None:
                verdict = {True: "met", False: "MISSED", None: ""}[objective["met"]]
                console.print(
                    f"{label}: {objective['measured_seconds']:g} s (target {objective['target_seconds']} s) {verdict}"
                )
        measurements = report.get("measurements") or {}
        for part in measurements.get(NOT_RECOVERED) or []:
            console.print(f"[bold red]NOT RECOVERED:[/bold red] {part}", soft_wrap=True)
        for warning in measurements.get(WARNINGS) or []:
            console.print(f"[yellow]warning:[/yellow] {warning}")
        for item in measurements.get(FOLLOW_UPS) or []:
            console.print(f"[yellow]follow-up:[/yellow] {item}", soft_wrap=True)
    if paths:
        console.print(f"reports: {', '.join(paths)}")


# --- failover -----------------------------------------------------------------------------------------


# `drctl failover --mode ...` runs the group's callback; `drctl failover abort` its one subcommand.
failover_app = typer.Typer(invoke_without_command=True)


@failover_app.callback()
def failover(
    context: typer.Context,
    mode: Annotated[
        str,
        typer.Option(
            "--mode",
            help="graceful: both regions up, stop writes on the primary and wait for lag 0 (no data loss). "
            "emergency: the primary region is impaired; nothing calls it, promote at once.",
        ),
    ] = "graceful",
    reason: ReasonOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Overrides exactly one refusal: the data-loss window (emergency) above the RPO or unknown. Never "
            "a DR region that does not answer, nor any other check (see --accept). Needs --reason; both are "
            "recorded in the journal, the report and the notification.",
        ),
    ] = False,
    accept: Annotated[
        list[str] | None,
        typer.Option(
            "--accept",
            metavar="CHECK",
            help="Emergency only, repeatable: go ahead although this preflight check refuses, recorded in the "
            "journal and the report. One of dr_backups_recent (stale backup copy), dr_node_group_active "
            "(DEGRADED node group), dr_load_balancer_has_healthy_targets. Checks that keep data safe (state, DR "
            "replica of the primary, traffic fence, lock) are never accepted. Needs --reason.",
        ),
    ] = None,
    fence_through_route53: Annotated[
        bool,
        typer.Option(
            "--fence-through-route53",
            help="Emergency only, when the DR region's CloudWatch is impaired: pin the traffic fence through "
            "Route53's control plane (us-east-1; disables both fence checks, inverts 'lowered') instead of "
            "raising it through CloudWatch; preflight checks the fence checks instead of the alarm. Refused when "
            "the primary region is us-east-1. Failback's lower_traffic_fence unpins it. Needs --reason; "
            "recorded in the journal and the report.",
        ),
    ] = False,
    abandon_unfinished: AbandonOption = False,
    unreviewed_checkout_reason: UnreviewedOption = None,
    stack: StackOption = None,
    journal: JournalOption = None,
    local_journal: LocalJournalOption = None,
    report_dir: ReportDirOption = DEFAULT_REPORT_DIR,
    as_json: JsonOption = False,
) -> None:
    """Fail over from the primary to the DR region (steady -> failed-over) and report RTO and data loss.

    Preflight: stack steady, DR database a serving replica, DR lag under the RPO (unless --force),
    DR health check green, no other run holding the lock. Then: scale DR compute and fail the cache
    over in parallel, record the lag at promotion, write the config, update the DR region and global
    resources only, converge the promoted database, reconcile DNS, verify, notify. Rerun the same
    command to resume an interrupted run. `drctl failover abort` undoes a failover that has not
    promoted the DR database yet.
    """
    from automation.runbooks.failover import (
        ACCEPT_OPTION,
        FailoverMode,
        accept_option,
        failover_runbook,
        fence_through_route53_option,
    )

    if context.invoked_subcommand is not None:
        return

    if mode not in tuple(FailoverMode):
        raise DrctlError(f"--mode must be graceful or emergency, got {mode!r}")
    if force and not (reason or "").strip():
        raise DrctlError("--force needs --reason", hint="say why losing more than the RPO is acceptable")
    accepted = accept_option(accept or [], FailoverMode(mode), reason)
    options = {ACCEPT_OPTION: accepted} if accepted else {}
    options |= fence_through_route53_option(fence_through_route53, FailoverMode(mode), reason)
    env = open_environment(stack, journal, local_journal)
    cfg = env.ctx.config()
    _confirm(
        f"Fail {env.ctx.stack.fully_qualified_name} over from {cfg.primary_region} to {cfg.dr_region} ({mode})?",
        yes,
        dry_run,
        as_json,
    )
    parameters = _parameters(
        env,
        reason,
        mode=mode,
        force=force,
        dry_run=dry_run,
        unreviewed_reason=unreviewed_checkout_reason,
        options=options,
    )
    _run_runbook(
        env,
        failover_runbook(env.ctx, mode, fence_through_route53=fence_through_route53),
        parameters,
        dry_run=dry_run,
        abandon_unfinished=abandon_unfinished,
        report_dir=report_dir,
        as_json=as_json,
    )


def fence_former_region(
    reason: ReasonOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    abandon_unfinished: AbandonOption = False,
    unreviewed_checkout_reason: UnreviewedOption = None,
    stack: StackOption = None,
    journal: JournalOption = None,
    local_journal: LocalJournalOption = None,
    report_dir: ReportDirOption = DEFAULT_REPORT_DIR,
    as_json: JsonOption = False,
) -> None:
    """Run this as soon as the region an emergency failover left answers again (failed-over only).

    Fences the former writer (default_transaction_read_only, reboot, verified) and scales the former
    region's node group to 0, so nothing that connects to it directly can write. The same two steps
    open `drctl failback prepare`; this runs just them, at once, before the rebuild is decided. Safe
    to repeat: each step is a no-op when done.
    """
    from automation.runbooks.failover import fence_former_region_runbook

    env = open_environment(stack, journal, local_journal)
    cfg = env.ctx.config()
    _confirm(
        f"Fence the former writer in {cfg.primary_region} and stop its compute (it reboots)?", yes, dry_run, as_json
    )
    _run_runbook(
        env,
        fence_former_region_runbook(env.ctx),
        _parameters(env, reason, dry_run=dry_run, unreviewed_reason=unreviewed_checkout_reason),
        dry_run=dry_run,
        abandon_unfinished=abandon_unfinished,
        report_dir=report_dir,
        as_json=as_json,
    )


@failover_app.command("abort")
def failover_abort(
    reason: Annotated[str, typer.Option("--reason", help="Why you abort the failover; recorded everywhere.")],
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    unreviewed_checkout_reason: UnreviewedOption = None,
    stack: StackOption = None,
    journal: JournalOption = None,
    local_journal: LocalJournalOption = None,
    report_dir: ReportDirOption = DEFAULT_REPORT_DIR,
    as_json: JsonOption = False,
) -> None:
    """Undo a failover (graceful or emergency) while the DR database has not been promoted.

    Opens the primary writer for writes again, moves the cache's writer back, lowers the traffic
    fence, puts the config (and the DR state authority) back to steady and the DR compute to its
    standby size. The unfinished failover run is archived as abandoned. Refused once the DR
    database is promoted (or may be being promoted): then the way back is `drctl failback`.
    Stop a failover still running (Ctrl-C) first: it holds the lock.
    """
    from automation.runbooks.failover import RUNBOOK as FAILOVER
    from automation.runbooks.failover_abort import failover_abort_runbook, preflight_refusals

    env = open_environment(stack, journal, local_journal)
    cfg = env.ctx.config()
    _confirm(f"Abort the failover: {cfg.primary_region} serves again?", yes, dry_run, as_json)
    runbook = failover_abort_runbook(env.ctx)
    parameters = _parameters(env, reason, dry_run=dry_run, unreviewed_reason=unreviewed_checkout_reason)
    unfinished = Journal(env.store).load()
    aborting = unfinished is not None and not unfinished.finished and unfinished.runbook == FAILOVER
    if aborting and not dry_run:
        # The failover run is abandoned only once this abort may go ahead: a refused abort leaves it resumable.
        refusals = preflight_refusals(runbook)
        if refusals:
            raise DrctlError(
                "failover abort refused, nothing was changed and the failover run stays resumable: "
                + "; ".join(refusals),
                hint=f"rerun `drctl failover --mode {unfinished.parameters.mode}` with its parameters to finish it",
            )
    _run_runbook(
        env,
        runbook,
        parameters,
        dry_run=dry_run,
        abandon_unfinished=aborting,
        report_dir=report_dir,
        as_json=as_json,
    )


# --- failback -------------------------------------------------------------------------------------------

failback_app = typer.Typer(
    help="Return to the primary region: `prepare` rebuilds it from DR, `switch` moves the writer back.",
    no_args_is_help=True,
)


@failback_app.command("prepare")
def failback_prepare(
    reason: ReasonOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    abandon_unfinished: AbandonOption = False,
    unreviewed_checkout_reason: UnreviewedOption = None,
    stack: StackOption = None,
    journal: JournalOption = None,
    local_journal: LocalJournalOption = None,
    report_dir: ReportDirOption = DEFAULT_REPORT_DIR,
    as_json: JsonOption = False,
) -> None:
    """failed-over -> resyncing: rebuild the primary region from DR (needs the primary region back).

    Snapshot the old primary, rebuild the primary-region database as a replica of the DR writer
    (full update, no refresh), wait until in sync, re-seed the cache, reverse S3 replication (with
    a Batch Replication follow-up), verify, notify.
    """
    from automation.runbooks.failback import prepare_runbook

    env = open_environment(stack, journal, local_journal)
    cfg = env.ctx.config()
    _confirm(f"Rebuild {cfg.primary_region} from {cfg.dr_region} (failback prepare)?", yes, dry_run, as_json)
    _run_runbook(
        env,
        prepare_runbook(env.ctx),
        _parameters(env, reason, dry_run=dry_run, unreviewed_reason=unreviewed_checkout_reason),
        dry_run=dry_run,
        abandon_unfinished=abandon_unfinished,
        report_dir=report_dir,
        as_json=as_json,
    )


@failback_app.command("switch")
def failback_switch(
    reason: ReasonOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    abandon_unfinished: AbandonOption = False,
    unreviewed_checkout_reason: UnreviewedOption = None,
    stack: StackOption = None,
    journal: JournalOption = None,
    local_journal: LocalJournalOption = None,
    report_dir: ReportDirOption = DEFAULT_REPORT_DIR,
    as_json: JsonOption = False,
) -> None:
    """resyncing -> steady: move the writer back to the primary; roll back to DR if it goes wrong.

    Read-only window on the DR writer, final sync, cache and config back to the primary, update
    (the DR rebuild left for last), verify and watch the error rate; then rebuild the DR replica.
    If anything fails once writes are stopped (error rate above 5%, failed verification), it
    ROLLS BACK to the DR region at once and exits with code 3.
    """
    from automation.runbooks.failback import run_failback_switch

    env = open_environment(stack, journal, local_journal)
    cfg = env.ctx.config()
    _confirm(
        f"Switch {env.ctx.stack.fully_qualified_name} back to {cfg.primary_region} (writes stop briefly)?",
        yes,
        dry_run,
        as_json,
    )
    parameters = _parameters(env, reason, dry_run=dry_run, unreviewed_reason=unreviewed_checkout_reason)

    def execute(engine: RunbookEngine) -> tuple[str, RunOutcome]:
        switched = run_failback_switch(
            engine, env.ctx, parameters, dry_run=dry_run, abandon_unfinished=abandon_unfinished
        )
        return switched.result, switched.outcome

    _run(env, report_dir, as_json, execute)


@failback_app.command("rollback")
def failback_rollback(
    reason: Annotated[str, typer.Option("--reason", help="Why you roll back; recorded everywhere.")],
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    abandon_unfinished: AbandonOption = False,
    unreviewed_checkout_reason: UnreviewedOption = None,
    stack: StackOption = None,
    journal: JournalOption = None,
    local_journal: LocalJournalOption = None,
    report_dir: ReportDirOption = DEFAULT_REPORT_DIR,
    as_json: JsonOption = False,
) -> None:
    """Undo a failback switch by hand (the switch rolls back by itself when its checks fail).

    Fence the primary, move cache and writes back to the DR writer, config back to failed-over.
    Refused once the switch has rebuilt the DR replica. Pass --abandon-unfinished to give up an
    interrupted switch.
    """
    from automation.runbooks.failback import rollback_runbook

    env = open_environment(stack, journal, local_journal)
    cfg = env.ctx.config()
    _confirm(f"Roll the failback back: {cfg.dr_region} serves again?", yes, dry_run, as_json)
    runbook = rollback_runbook(env.ctx, cause=f"operator request: {reason}")
    parameters = _parameters(env, reason, mode="manual", dry_run=dry_run, unreviewed_reason=unreviewed_checkout_reason)

    def execute(engine: RunbookEngine) -> tuple[str, RunOutcome]:
        outcome = engine.run(runbook, parameters, dry_run=dry_run, abandon_unfinished=abandon_unfinished)
        rolled = outcome.run is not None and outcome.run.measurements.get(RESULT) == "rolled-back"
        return ("rolled-back" if rolled and outcome.status == "succeeded" else outcome.status), outcome

    _run(env, report_dir, as_json, execute)


# --- reconcile-dns, break-lock ------------------------------------------------------------------------------


def reconcile_dns(
    reason: ReasonOption = None,
    dry_run: DryRunOption = False,
    unreviewed_checkout_reason: UnreviewedOption = None,
    stack: StackOption = None,
    journal: JournalOption = None,
    local_journal: LocalJournalOption = None,
    report_dir: ReportDirOption = DEFAULT_REPORT_DIR,
    as_json: JsonOption = False,
) -> None:
    """Bring Route53 records and health checks up to the current state; touches nothing regional.

    The follow-up of a failover during a Route53 control-plane outage.
    """
    from automation.runbooks.failover import reconcile_dns_runbook

    env = open_environment(stack, journal, local_journal)
    cfg = env.ctx.config()
    parameters = _parameters(
        env,
        reason,
        dry_run=dry_run,
        unreviewed_reason=unreviewed_checkout_reason,
        options={"drState": cfg.dr_state.value, "activeRegion": cfg.active_region},
    )
    _run_runbook(
        env, reconcile_dns_runbook(env.ctx), parameters, dry_run=dry_run, report_dir=report_dir, as_json=as_json
    )


def break_lock(
    reason: Annotated[str, typer.Option("--reason", help="Why the holder is known to be dead; recorded.")],
    abandon_unfinished: Annotated[
        bool,
        typer.Option(
            "--abandon-unfinished",
            help="Also mark the unfinished run in the journal as abandoned (or move an unreadable journal aside), "
            "so the next command starts anew instead of resuming it. Without it, rerunning the same command "
            "resumes that run.",
        ),
    ] = False,
    stack: StackOption = None,
    journal: JournalOption = None,
    local_journal: LocalJournalOption = None,
) -> None:
    """Break a stack lock whose holder died (a killed drctl, a lost laptop). Recorded under lock-breaks/.

    Make sure the holder really stopped (another terminal, a CI job?) before breaking its lock.
    A damaged lock file is removed too (its content is kept in the record).
    """
    env = open_environment(stack, journal, local_journal)
    name = env.ctx.stack.fully_qualified_name
    broken = StackLock(env.store, name, env.ctx.clock).break_lock(reason, env.operator)
    console.print(broken.describe() if broken else f"{name} was not locked")
    if abandon_unfinished:
        console.print(abandon_current_run(env.store, env.ctx.clock.now))


def abandon_current_run(store: DocumentStore, now: Callable[[], Any]) -> str:
    """Mark the journal's unfinished run abandoned and archive it (an unreadable journal is moved aside)."""
    journal = Journal(store)
    try:
        run = journal.load()
    except CorruptJournalError as error:
        kept = journal.quarantine()
        return f"moved the unreadable journal aside to {kept} ({error})"
    if run is None or run.finished:
        return "no unfinished run to abandon"
    run.status, run.finished_at = RunStatus.ABANDONED, iso(now())
    journal.save(run)
    journal.archive(run)
    return f"abandoned run {run.run_id} ({run.runbook})"


# --- state: the DR state authority and the committed stack file ------------------------------------------------

state_app = typer.Typer(
    help="The DR state authority (DR-region control store) and how the committed Pulumi.<stack>.yaml catches up.",
    no_args_is_help=True,
)
ProjectDirOption = Annotated[
    Path, typer.Option("--project-dir", help="The checkout whose Pulumi.<stack>.yaml is compared or written.")
]


@state_app.command("show")
def state_show(
    stack: StackOption = None,
    journal: JournalOption = None,
    local_journal: LocalJournalOption = None,
    project_dir: ProjectDirOption = Path(),
    as_json: JsonOption = False,
) -> None:
    """Show the DR keys of the authority and of the committed Pulumi.<stack>.yaml (git HEAD), and what differs.

    The checkout's own file carries the authority's keys whenever drctl opens the stack; the committed one
    catches up by pull request (drctl state sync-file). Exit code 1 when the committed file disagrees.
    """
    env = open_environment(stack, journal, local_journal)
    name = env.ctx.stack.fully_qualified_name
    record = _authority_record(env)
    path = stack_file(project_dir, name)
    committed = _committed_stack_file(project_dir, path)
    committed_keys = dr_keys(config_of(committed, f"{path.name} (HEAD)"))
    committed_diff = differences(record.keys, committed_keys)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "authority": record.to_dict(),
                    "committedFile": {"path": str(path), "keys": committed_keys, "differences": committed_diff},
                },
                indent=2,
            )
        )
    else:
        console.print(
            f"DR state of {name} ({env.store.location}/dr-state.json, written {record.written_at} by "
            f"{record.operator}, run {record.run_id}):"
        )
        for key, value in record.keys.items():
            console.print(f"  {key.split(':', 1)[1]} = {value}", markup=False)
        verdict = "agrees" if not committed_diff else "DIFFERS: " + "; ".join(committed_diff)
        console.print(f"committed {path} (HEAD): {verdict}", markup=False)
        if committed_diff:
            console.print(f"catch up: drctl state sync-file --stack {name}, then commit {path.name}", markup=False)
    if committed_diff:
        raise typer.Exit(1)


@state_app.command("sync-file")
def state_sync_file(
    stack: StackOption = None,
    journal: JournalOption = None,
    local_journal: LocalJournalOption = None,
    project_dir: ProjectDirOption = Path(),
) -> None:
    """Write the committed Pulumi.<stack>.yaml with the authority's DR keys, for a pull request.

    The file becomes HEAD's version with only the DR keys' lines changed: whatever the CLI rewrote in the
    checkout's copy (quoting) is not part of the pull request.
    """
    env = open_environment(stack, journal, local_journal)
    name = env.ctx.stack.fully_qualified_name
    record = _authority_record(env)
    path = stack_file(project_dir, name)
    committed = _committed_stack_file(project_dir, path)
    changed = differences(record.keys, dr_keys(config_of(committed, f"{path.name} (HEAD)")))
    path.write_text(with_dr_keys(committed, record.keys))
    console.print(f"{path}: " + ("; ".join(changed) if changed else "already agrees"), markup=False, soft_wrap=True)


def _committed_stack_file(project_dir: Path, path: Path) -> str:
    from automation.checkout import committed_text

    text = committed_text(project_dir, path.name)
    if text is None:
        raise DrctlError(
            f"{path.name} is not committed in {project_dir} (or that is no git checkout)",
            hint="run in the repository's checkout, or pass --project-dir",
        )
    return text


@state_app.command("init")
def state_init(
    reason: Annotated[str, typer.Option("--reason", help="Why the authority is created now; recorded.")],
    not_steady_reason: Annotated[
        str | None,
        typer.Option(
            "--not-steady-reason",
            help="Create it even though the stack config's DR keys are not those of a stack that never failed "
            "over; say how you know they are where the platform stands (recorded).",
        ),
    ] = None,
    stack: StackOption = None,
    journal: JournalOption = None,
    local_journal: LocalJournalOption = None,
) -> None:
    """Create the DR state authority from the stack config (once, before the first CI deploy gate).

    Refused when the DR keys are not the steady defaults (a checkout an earlier drctl run left failed over, say)
    unless --not-steady-reason says why they are right.
    """
    env = open_environment(stack, journal, local_journal)
    authority = DrStateAuthority(env.store, env.ctx.stack.fully_qualified_name)
    existing = authority.read()
    if existing is not None:
        raise DrctlError(
            f"the DR state authority {authority.location} exists already (written {existing.written_at})",
            hint="drctl state show; runbooks keep it current",
        )
    config = env.ctx.stack.get_config()
    unusual = steady_default_problems(config)
    if unusual and not (not_steady_reason or "").strip():
        raise DrctlError(
            f"the stack config's DR keys are not those of a stack that never failed over ({', '.join(unusual)}): "
            "they may be left over in this checkout rather than where the platform stands",
            hint="check where it stands (drctl status: which database is the writer, where traffic goes); "
            "if these keys are right, rerun with --not-steady-reason '...' (recorded), else fix the file first",
        )
    note = f"; not steady: {not_steady_reason.strip()}" if unusual and not_steady_reason else ""
    record = authority.write(
        dr_keys(config), run_id=f"state-init: {reason}{note}", operator=env.operator, at=env.ctx.clock.now()
    )
    console.print(
        f"created {authority.location}: " + ", ".join(f"{k.split(':', 1)[1]}={v}" for k, v in record.keys.items())
    )


@state_app.command("clear-pending")
def state_clear_pending(
    reason: Annotated[str, typer.Option("--reason", help="What you checked in AWS; recorded in the journal store.")],
    imports: Annotated[
        list[str] | None,
        typer.Option(
            "--import",
            help="URN=ID: this pending create's resource exists in AWS with this id; adopt it with `pulumi import` "
            "after the pending creates are dropped. Repeat for each.",
        ),
    ] = None,
    stack: StackOption = None,
    journal: JournalOption = None,
    local_journal: LocalJournalOption = None,
) -> None:
    """Drop the pending creates an interrupted update left, after you checked each in AWS; adopt the ones that exist.

    Runs the CLI's own `pulumi refresh --clear-pending-creates` targeted at the root stack (it reads nothing from
    any region), then `pulumi import` for each --import. Takes the stack lock; the record goes to
    pending-clears/ in the control store.
    """
    wanted = {}
    for item in imports or []:
        urn, separator, cloud_id = item.rpartition("=")
        if not separator or not urn.startswith("urn:pulumi:") or not cloud_id:
            raise DrctlError(f"--import {item!r} is not URN=ID", hint="e.g. --import urn:pulumi:prod::...::db-dr=my-db")
        wanted[urn] = cloud_id
    env = open_environment(stack, journal, local_journal)
    name = env.ctx.stack.fully_qualified_name
    lease = StackLock(env.store, name, env.ctx.clock).acquire(env.operator, "state-clear-pending")
    try:
        report = env.ctx.stack.resolve_pending_creates(wanted)
        moment = env.ctx.clock.now()
        record = {"at": iso(moment), "operator": env.operator, "reason": reason, "report": report.describe()}
        env.store.replace(f"pending-clears/{moment.strftime('%Y%m%dT%H%M%S%fZ')}.json", to_json_bytes(record), None)
    finally:
        lease.release()
    console.print(report.describe(), markup=False)


def _authority_record(env: Environment) -> DrStateRecord:
    authority = DrStateAuthority(env.store, env.ctx.stack.fully_qualified_name)
    record = authority.read()
    if record is None:
        raise DrctlError(
            f"no DR state authority at {authority.location}",
            hint=f"create it once from the stack config: drctl state init --stack "
            f"{env.ctx.stack.fully_qualified_name} --reason '...'",
        )
    return record


# --- deploy-gate: CI's `pulumi up` behind the runbooks' lock and the authority's DR state ------------------------

GATE_STOP_WAIT_SECONDS = 600.0
"""After passing a cancellation (SIGINT/SIGTERM) to the command, how long deploy-gate waits for it to exit."""


@dataclass
class GateEnvironment:
    """What deploy-gate needs: the control store, the clock, and (to take the lock) who runs it."""

    stack: str
    store: DocumentStore
    clock: Clock
    operator: str = ""


def default_gate_environment(
    stack: str | None, journal: str | None, local_journal: Path | None, project_dir: Path, read_only: bool
) -> GateEnvironment:
    """Only the control store: its region from the checkout's stack file. No Pulumi CLI, no state, no decrypt;
    STS only to name the lock holder of a deploy."""
    from automation.evaluate import stack_file_config
    from automation.stack import check_stack_name, short_stack_name
    from components.config import parse_config

    name = check_stack_name(require_stack(stack))
    dr_region = parse_config(stack_file_config(short_stack_name(name), project_dir)).dr_region
    clients = AwsClients(None)
    store = journal_store(control_store_location(journal, local_journal), name, dr_region, clients)
    operator = "" if read_only else caller_identity(clients, dr_region)
    return GateEnvironment(name, store, SystemClock(), operator)


open_gate_environment: Callable[[str | None, str | None, Path | None, Path, bool], GateEnvironment] = (
    default_gate_environment
)
"""Replaced by tests."""


def deploy_gate(
    command: Annotated[list[str], typer.Argument(help="The command to run behind the gate, after --.")],
    read_only: Annotated[
        bool,
        typer.Option(
            "--read-only",
            help="A preview or plan: sync the DR keys into the file, take no lock. Needs only read access to the "
            "control store (no Pulumi CLI, state or decrypt).",
        ),
    ] = False,
    stack: StackOption = None,
    journal: JournalOption = None,
    local_journal: LocalJournalOption = None,
    project_dir: ProjectDirOption = Path(),
) -> None:
    """Run a CI deploy (or preview) so that it can neither undo a failover nor race a runbook.

    Refuses (exit 4) while a runbook holds the stack lock or an unfinished run is in the journal. Otherwise
    takes the stack lock as a "ci-deploy" holder (not with --read-only), writes the DR state authority's keys
    into the checkout's Pulumi.<stack>.yaml (warning with the difference when the committed file disagrees),
    runs COMMAND and exits with its exit code, then releases the lock. A cancellation (SIGINT, SIGTERM) is
    passed on to COMMAND, and the lock is released only once COMMAND has exited.
    """
    if not command:
        raise DrctlError("deploy-gate needs a command after --", hint="drctl deploy-gate --stack S -- pulumi up --yes")
    gate = open_gate_environment(stack, journal, local_journal, project_dir, read_only)
    lock = StackLock(gate.store, gate.stack, gate.clock)
    _refuse_while_a_runbook_owns(gate, lock)
    lease = None
    if not read_only:
        try:
            lease = lock.acquire(gate.operator, CI_DEPLOY_HOLDER, origin=_ci_run_url())
        except DrctlError as taken:  # somebody took it between the check and now
            raise DrctlError(f"deploy refused: {taken}", hint=taken.hint, exit_code=DEPLOY_BLOCKED_EXIT) from None
    try:
        if lease is not None:
            lease.start_heartbeat()
        _write_authority_keys(gate, project_dir, read_only)
        if lease is not None:
            lease.check()
        code = run_forwarding_signals(command, GATE_STOP_WAIT_SECONDS)
    except ProcessStillRunningError:
        if lease is not None:
            lease.keep_held()  # pulumi may still act: nothing else may start against the stack
        raise
    finally:
        if lease is not None:
            lease.release()
    if code:
        raise typer.Exit(code)


def _write_authority_keys(gate: GateEnvironment, project_dir: Path, read_only: bool) -> None:
    path = stack_file(project_dir, gate.stack)
    record = DrStateAuthority(gate.store, gate.stack).read()
    if record is None:
        if not read_only:
            raise DrctlError(
                f"no DR state authority for {gate.stack}: a deploy cannot know whether the platform is failed over",
                hint=f"create it once: drctl state init --stack {gate.stack} --reason '...'",
            )
        err_console.print(f"warning: no DR state authority for {gate.stack}; previewing the committed {path.name}")
        return
    changed = sync_stack_file(path, record)
    if changed:
        err_console.print(
            f"warning: the committed {path.name} disagrees with the DR state authority (run "
            f"{record.run_id}, {record.written_at}): " + "; ".join(changed) + ". Deploying the authority's "
            f"values. Catch up: drctl state sync-file --stack {gate.stack}, and commit {path.name}",
            markup=False,
        )


def run_forwarding_signals(command: list[str], stop_wait_seconds: float) -> int:
    """Run `command` in a session of its own; pass SIGINT/SIGTERM on to its process group and wait for it.

    The command (a shell running `pulumi up`) then gets the cancellation once, as the CLI expects, instead of
    the runner killing the shell and leaving pulumi running. Returns its exit code; raises a
    ProcessStillRunningError when it has not exited `stop_wait_seconds` after a cancellation.
    """
    import signal
    import threading
    import time

    process = subprocess.Popen(command, start_new_session=True)
    cancelled = threading.Event()

    def forward(signum: int, _frame: Any) -> None:
        cancelled.set()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)

    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        while process.poll() is None:
            if cancelled.is_set():
                deadline = time.monotonic() + stop_wait_seconds
                while process.poll() is None and time.monotonic() < deadline:
                    time.sleep(0.1)
                if process.poll() is None:
                    raise ProcessStillRunningError(
                        f"deploy cancelled, but {command[0]} (pid {process.pid}) has not exited after "
                        f"{stop_wait_seconds:g} s: the stack lock stays held",
                        hint="stop it (kill -INT -- -PID, then -KILL), then drctl break-lock --reason '...' and, once "
                        "no pulumi of it is left, pulumi cancel --stack STACK --yes",
                    )
                break
            time.sleep(0.1)
        return process.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _ci_run_url() -> str:
    """The CI run that deploys, for the lock record (an emergency cancels that run)."""
    names = ("GITHUB_SERVER_URL", "GITHUB_REPOSITORY", "GITHUB_RUN_ID")
    server, repository, run_id = (os.environ.get(name) for name in names)
    return f"{server}/{repository}/actions/runs/{run_id}" if server and repository and run_id else ""


def _refuse_while_a_runbook_owns(gate: GateEnvironment, lock: StackLock) -> None:
    held = lock.current()
    if held is not None:
        raise DrctlError(
            f"deploy refused: {lock.describe_holder(held)}",
            hint=lock.refusal_hint(held),
            exit_code=DEPLOY_BLOCKED_EXIT,
        )
    try:
        run = Journal(gate.store).load()
    except CorruptJournalError as error:
        raise DrctlError(f"deploy refused: {error}", hint=error.hint, exit_code=DEPLOY_BLOCKED_EXIT) from None
    if run is not None and not run.finished:
        raise DrctlError(
            f"deploy refused: {run.runbook} run {run.run_id} on {gate.stack} is unfinished ({run.status.value}, "
            f"started {run.started_at} by {run.parameters.operator})",
            hint="finish it (rerun the same drctl command) or abandon it (--abandon-unfinished) before deploying",
            exit_code=DEPLOY_BLOCKED_EXIT,
        )
