"""The DR commands of drctl: status, failover, failback prepare|switch|rollback, reconcile-dns, break-lock.

Registered on the app in `automation.cli`. Each command builds an
`Environment` (the stack adapter, the AWS side, the clock, the journal store)
with `open_environment`, which tests and the sandbox replace.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel
from rich.table import Table

from automation.aws.readiness import Status
from automation.console import console, err_console
from automation.errors import DrctlError
from automation.journal import (
    DocumentStore,
    Journal,
    RunParameters,
    RunStatus,
    StackLock,
    SystemClock,
    iso,
    local_store,
    s3_store,
)
from automation.runbook import Runbook, RunbookEngine, RunFailedError, RunOutcome, default_operator
from automation.runbooks.context import FOLLOW_UPS, RESULT, WARNINGS, DrAws, DrContext

ROLLED_BACK_EXIT = 3
NOT_READY_EXIT = 2

StackOption = Annotated[
    str | None,
    typer.Option(
        "--stack",
        envvar="DRCTL_STACK",
        help="Fully qualified stack, ORG/dr-platform/STACK (env DRCTL_STACK). Never created by drctl.",
    ),
]
JournalOption = Annotated[
    str,
    typer.Option(
        "--journal",
        envvar="DRCTL_JOURNAL",
        help="Where the journal, the lock and the run reports live: a local directory, or s3://BUCKET/PREFIX "
        "(production: the DR-region bucket of the Pulumi state, so they survive the primary region). "
        "Env DRCTL_JOURNAL.",
    ),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        envvar="DRCTL_AWS_ENDPOINT_URL",
        help="Send every AWS call to this endpoint (a moto server) instead of AWS. Env DRCTL_AWS_ENDPOINT_URL.",
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
DEFAULT_JOURNAL = ".drctl"
DEFAULT_REPORT_DIR = Path("out/reports")


@dataclass
class Environment:
    ctx: DrContext
    store: DocumentStore
    simulation: bool = False


def journal_store(location: str, stack: str, ctx: DrContext) -> DocumentStore:
    """A local directory, or s3://bucket/prefix through the DR region's endpoint (it must outlive the primary)."""
    if location.startswith("s3://"):
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        if not bucket:
            raise DrctlError(f"--journal {location} names no bucket", hint="use s3://BUCKET/PREFIX")
        client = ctx.aws.clients.client("s3", ctx.config().dr_region)
        return s3_store(stack, bucket, prefix or "drctl", client=client)
    return local_store(stack, root=Path(location))


def default_environment(stack: str | None, journal: str, endpoint_url: str | None) -> Environment:
    from automation.aws.clients import AwsClients
    from automation.stack import PulumiStack, check_stack_name

    name = check_stack_name(require_stack(stack))
    clock = SystemClock()
    ctx = DrContext(PulumiStack.select(name), DrAws(AwsClients(endpoint_url), clock), clock)
    return Environment(ctx, journal_store(journal, name, ctx))


open_environment: Callable[[str | None, str, str | None], Environment] = default_environment
"""Replaced by tests (stand-in stack, fake AWS) and by the sandbox."""


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
    endpoint_url: EndpointOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the DR state and live readiness of both regions.

    Reads the stack config and outputs, then replica lag vs RPO, health checks, recovery points,
    S3 replication, the global datastore's actual primary and DR compute.

    Exit code 0 when ready, 2 when a reading is failing or its region unreachable.
    """
    from automation.runbooks.status import read_status

    env = open_environment(stack, DEFAULT_JOURNAL, endpoint_url)
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
        simulation=env.simulation,
    )


def _parameters(reason: str | None, *, mode: str | None = None, force: bool = False) -> RunParameters:
    return RunParameters(reason=reason or "(no reason given)", operator=default_operator(), mode=mode, force=force)


def _confirm(question: str, yes: bool, dry_run: bool, as_json: bool) -> None:
    if yes or dry_run:
        return
    if as_json:
        raise DrctlError("--json cannot ask for confirmation", hint="add --yes")
    typer.confirm(question, abort=True)


def _copy_reports(store: DocumentStore, run_id: str, report_dir: Path) -> list[str]:
    written = []
    for suffix in (".json", ".md"):
        found = store.read(f"reports/{run_id}{suffix}")
        if found is not None:
            report_dir.mkdir(parents=True, exist_ok=True)
            path = report_dir / f"{run_id}{suffix}"
            path.write_bytes(found.data)
            written.append(str(path))
    return written


def _stored_report(store: DocumentStore, run_id: str) -> dict[str, Any] | None:
    found = store.read(f"reports/{run_id}.json")
    return json.loads(found.data) if found else None


def _run(
    env: Environment,
    report_dir: Path,
    as_json: bool,
    execute: Callable[[RunbookEngine], tuple[str, RunOutcome]],
) -> None:
    """Run, copy the reports, print the outcome; a rollback exits with 3."""
    engine = _engine(env, as_json)
    try:
        result, outcome = execute(engine)
    except RunFailedError as failure:
        paths = _copy_reports(env.store, failure.run.run_id, report_dir)
        if paths:
            err_console.print(f"reports: {', '.join(paths)}")
        raise
    if outcome.status == "planned":
        if as_json:
            typer.echo(json.dumps({"result": "planned", "plan": outcome.plan}, indent=2))
        return
    run = outcome.run
    paths = _copy_reports(env.store, run.run_id, report_dir) if run and outcome.status != "already-completed" else []
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
    if result == "rolled-back":
        raise typer.Exit(ROLLED_BACK_EXIT)


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
        for warning in measurements.get(WARNINGS) or []:
            console.print(f"[yellow]warning:[/yellow] {warning}")
        for item in measurements.get(FOLLOW_UPS) or []:
            console.print(f"[yellow]follow-up:[/yellow] {item}", soft_wrap=True)
    if paths:
        console.print(f"reports: {', '.join(paths)}")


# --- failover -----------------------------------------------------------------------------------------


def failover(
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
            help="Fail over even though the DR replica lag is above the RPO or unknown. Needs --reason; "
            "both are recorded in the journal, the report and the notification.",
        ),
    ] = False,
    abandon_unfinished: AbandonOption = False,
    stack: StackOption = None,
    journal: JournalOption = DEFAULT_JOURNAL,
    endpoint_url: EndpointOption = None,
    report_dir: ReportDirOption = DEFAULT_REPORT_DIR,
    as_json: JsonOption = False,
) -> None:
    """Fail over from the primary to the DR region (steady -> failed-over) and report RTO and data loss.

    Preflight: stack steady, DR database a serving replica, DR lag under the RPO (unless --force),
    DR health check green, no other run holding the lock. Then: scale DR compute and fail the cache
    over in parallel, record the lag at promotion, write the config, update the DR region and global
    resources only, converge the promoted database, reconcile DNS, verify, notify. Rerun the same
    command to resume an interrupted run.
    """
    from automation.runbooks.failover import FailoverMode, failover_runbook

    if mode not in tuple(FailoverMode):
        raise DrctlError(f"--mode must be graceful or emergency, got {mode!r}")
    if force and not (reason or "").strip():
        raise DrctlError("--force needs --reason", hint="say why losing more than the RPO is acceptable")
    env = open_environment(stack, journal, endpoint_url)
    cfg = env.ctx.config()
    _confirm(
        f"Fail {env.ctx.stack.fully_qualified_name} over from {cfg.primary_region} to {cfg.dr_region} ({mode})?",
        yes,
        dry_run,
        as_json,
    )
    parameters = _parameters(reason, mode=mode, force=force)
    _run_runbook(
        env,
        failover_runbook(env.ctx, mode),
        parameters,
        dry_run=dry_run,
        abandon_unfinished=abandon_unfinished,
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
    stack: StackOption = None,
    journal: JournalOption = DEFAULT_JOURNAL,
    endpoint_url: EndpointOption = None,
    report_dir: ReportDirOption = DEFAULT_REPORT_DIR,
    as_json: JsonOption = False,
) -> None:
    """failed-over -> resyncing: rebuild the primary region from DR (needs the primary region back).

    Snapshot the old primary, rebuild the primary-region database as a replica of the DR writer
    (full update, no refresh), wait until in sync, re-seed the cache, reverse S3 replication (with
    a Batch Replication follow-up), verify, notify.
    """
    from automation.runbooks.failback import prepare_runbook

    env = open_environment(stack, journal, endpoint_url)
    cfg = env.ctx.config()
    _confirm(f"Rebuild {cfg.primary_region} from {cfg.dr_region} (failback prepare)?", yes, dry_run, as_json)
    _run_runbook(
        env,
        prepare_runbook(env.ctx),
        _parameters(reason),
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
    stack: StackOption = None,
    journal: JournalOption = DEFAULT_JOURNAL,
    endpoint_url: EndpointOption = None,
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

    env = open_environment(stack, journal, endpoint_url)
    cfg = env.ctx.config()
    _confirm(
        f"Switch {env.ctx.stack.fully_qualified_name} back to {cfg.primary_region} (writes stop briefly)?",
        yes,
        dry_run,
        as_json,
    )
    parameters = _parameters(reason)

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
    stack: StackOption = None,
    journal: JournalOption = DEFAULT_JOURNAL,
    endpoint_url: EndpointOption = None,
    report_dir: ReportDirOption = DEFAULT_REPORT_DIR,
    as_json: JsonOption = False,
) -> None:
    """Undo a failback switch by hand (the switch rolls back by itself when its checks fail).

    Fence the primary, move cache and writes back to the DR writer, config back to failed-over.
    Refused once the switch has rebuilt the DR replica. Pass --abandon-unfinished to give up an
    interrupted switch.
    """
    from automation.runbooks.failback import rollback_runbook

    env = open_environment(stack, journal, endpoint_url)
    cfg = env.ctx.config()
    _confirm(f"Roll the failback back: {cfg.dr_region} serves again?", yes, dry_run, as_json)
    runbook = rollback_runbook(env.ctx, cause=f"operator request: {reason}")
    parameters = _parameters(reason, mode="manual")

    def execute(engine: RunbookEngine) -> tuple[str, RunOutcome]:
        outcome = engine.run(runbook, parameters, dry_run=dry_run, abandon_unfinished=abandon_unfinished)
        rolled = outcome.run is not None and outcome.run.measurements.get(RESULT) == "rolled-back"
        return ("rolled-back" if rolled and outcome.status == "succeeded" else outcome.status), outcome

    _run(env, report_dir, as_json, execute)


# --- reconcile-dns, break-lock ------------------------------------------------------------------------------


def reconcile_dns(
    reason: ReasonOption = None,
    dry_run: DryRunOption = False,
    stack: StackOption = None,
    journal: JournalOption = DEFAULT_JOURNAL,
    endpoint_url: EndpointOption = None,
    report_dir: ReportDirOption = DEFAULT_REPORT_DIR,
    as_json: JsonOption = False,
) -> None:
    """Bring Route53 records and health checks up to the current state; touches nothing regional.

    The follow-up of a failover during a Route53 control-plane outage.
    """
    from automation.runbooks.failover import reconcile_dns_runbook

    env = open_environment(stack, journal, endpoint_url)
    cfg = env.ctx.config()
    parameters = RunParameters(
        reason=reason or "(no reason given)",
        operator=default_operator(),
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
            help="Also mark the unfinished run in the journal as abandoned, so the next command starts anew "
            "instead of resuming it. Without it, rerunning the same command resumes that run.",
        ),
    ] = False,
    stack: StackOption = None,
    journal: JournalOption = DEFAULT_JOURNAL,
    endpoint_url: EndpointOption = None,
) -> None:
    """Break a stack lock whose holder died (a killed drctl, a lost laptop). Recorded under lock-breaks/.

    Make sure the holder really stopped (another terminal, a CI job?) before breaking its lock.
    """
    env = open_environment(stack, journal, endpoint_url)
    name = env.ctx.stack.fully_qualified_name
    broken = StackLock(env.store, name, env.ctx.clock).break_lock(reason, default_operator())
    console.print(f"broke the lock of {broken.describe()}" if broken else f"{name} was not locked")
    if abandon_unfinished:
        run = abandon_current_run(env.store, env.ctx.clock.now)
        console.print(f"abandoned run {run.run_id} ({run.runbook})" if run else "no unfinished run to abandon")


def abandon_current_run(store: DocumentStore, now: Callable[[], Any]) -> Any:
    """Mark the journal's unfinished run abandoned and archive it; None when there is none."""
    journal = Journal(store)
    run = journal.load()
    if run is None or run.finished:
        return None
    run.status, run.finished_at = RunStatus.ABANDONED, iso(now())
    journal.save(run)
    journal.archive(run)
    return run
