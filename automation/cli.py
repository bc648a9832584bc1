"""drctl: disaster-recovery automation for the dr-platform stack."""

from __future__ import annotations

import json
import sys

import typer
from rich.table import Table

from automation import backup_verify, plan_commands
from automation.console import console, err_console
from automation.drill import command as drill_command
from automation.errors import DrctlError
from automation.runbooks import commands as dr_commands

app = typer.Typer(
    name="drctl",
    help="Fail the dr-platform stack over to its DR region and back, check readiness, rehearse drills.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

_state = {"debug": False}


@app.callback()
def _options(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    _state["debug"] = debug


@app.command()
def inventory(
    stack: str = typer.Option("prod", help="Stack whose Pulumi.<stack>.yaml config is evaluated."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Evaluate the program offline and list the resources it declares per region."""
    from automation.evaluate import evaluate_program, stack_file_config
    from automation.inventory import inventory as count_resources

    evaluation = evaluate_program(stack_file_config(stack), stack=stack)
    counts = count_resources(evaluation)
    if as_json:
        typer.echo(
            json.dumps({"stack": stack, "activeRegion": evaluation.config.active_region, "regions": counts}, indent=2)
        )
        return
    cfg = evaluation.config
    for region, types in counts.items():
        role = cfg.role_of(region) if region in (cfg.primary_region, cfg.dr_region) else "global"
        active = " (active)" if region == cfg.active_region else ""
        table = Table(title=f"{region} - {role}{active}", title_justify="left")
        table.add_column("resource type")
        table.add_column("count", justify="right")
        for type_token, count in types.items():
            table.add_row(type_token, str(count))
        table.add_row("[bold]total[/bold]", f"[bold]{sum(types.values())}[/bold]")
        console.print(table)
    console.print(f"drState={cfg.dr_state.value} activeRegion={cfg.active_region} (evaluated offline under mocks)")


app.command("plan")(plan_commands.plan)
app.command("guard")(plan_commands.guard)
app.command("backup-verify")(backup_verify.command)
app.command("drill")(drill_command.drill)
app.command("status")(dr_commands.status)
app.add_typer(dr_commands.failover_app, name="failover")
app.command("fence-former-region")(dr_commands.fence_former_region)
app.add_typer(dr_commands.failback_app, name="failback")
app.command("reconcile-dns")(dr_commands.reconcile_dns)
app.command("break-lock")(dr_commands.break_lock)
app.add_typer(dr_commands.state_app, name="state")
app.command("deploy-gate")(dr_commands.deploy_gate)


def main() -> None:
    """Entry point: map every known error to one clear message and a non-zero exit."""
    from components.config import ConfigError

    try:
        exit_code = app(standalone_mode=False)
    except (DrctlError, ConfigError) as error:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/bold red] {error}")
        hint = getattr(error, "hint", None)
        if hint:
            err_console.print(f"hint: {hint}")
        sys.exit(getattr(error, "exit_code", 1) or 1)
    except (typer.Abort, KeyboardInterrupt):
        # A run's own Ctrl-C is handled by the runbook engine (it stops the step first, exit 130);
        # this is a Ctrl-C outside a run, or repeated when nothing of the run can still act.
        err_console.print("aborted")
        sys.exit(130)
    except Exception as error:
        if _state["debug"]:
            raise
        err_console.print(
            f"[bold red]error:[/bold red] {type(error).__name__}: {error} (run with --debug for the traceback)"
        )
        sys.exit(1)
    # Outside standalone mode click returns typer.Exit's code (status: 2 = not ready, 3 = rolled back).
    if isinstance(exit_code, int) and exit_code:
        sys.exit(exit_code)


if __name__ == "__main__":
    main()
