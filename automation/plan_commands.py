"""The `drctl plan` and `drctl guard` commands (registered on the app in `automation.cli`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from automation.console import console
from automation.errors import DrctlError

if TYPE_CHECKING:
    from automation.guard import GuardResult

# Heavy modules (the program evaluator, pulumi) are imported inside the
# commands so that `drctl --help` stays fast.


def plan(
    to: str | None = typer.Option(
        None,
        "--to",
        help="Target DR state: failed-over, resyncing or steady. Default: the next state from the current one.",
    ),
    stack: str = typer.Option("prod", help="Stack whose Pulumi.<stack>.yaml config is the current state."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Show offline what a DR transition changes: inventory, change set, scope, policies, RTO/RPO budget."""
    from automation.evaluate import stack_file_config
    from automation.plan import build_plan, render

    result = build_plan(stack_file_config(stack), to, stack=stack)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        render(result, console)
    if result.blocked:
        raise DrctlError(
            f"AWS would refuse {len(result.refusals)} declaration(s) of the target state; the update would fail",
            hint="each refusal names the resource, the AWS behaviour and its source; fix the config or program",
        )


def guard(
    preview: Annotated[Path, typer.Argument(help="`pulumi preview --json` output, or engine events (--event-log).")],
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="URN or logical name of a stateful resource allowed to go (repeat for several)."),
    ] = None,
    allow_file: Annotated[
        Path | None,
        typer.Option(
            "--allow-file",
            help="File of allow entries, one URN or name a line, # comments (CI: .github/guard-allow.txt).",
        ),
    ] = None,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Fail on a preview that deletes, replaces or unprotects a stateful resource, failed, or is not understood."""
    from automation.guard import check, load_preview, read_allow_file

    allow = [*(allow or []), *(read_allow_file(allow_file) if allow_file else [])]
    result = check(load_preview(preview), allow)
    matched = {f.urn for f in result.findings} | {f.name for f in result.findings}
    unused = [entry for entry in allow if entry not in matched]
    if as_json:
        typer.echo(json.dumps({**result.to_json(), "unusedAllowEntries": unused}, indent=2))
    else:
        _render_guard(result, unused)
    if not result.passed:
        raise DrctlError(
            f"the preview would delete, replace, drop or unprotect {len(result.blocked)} stateful resource(s),"
            " or holds an operation the guard does not know",
            hint="if that is intended, name each resource with --allow <URN or name> in a reviewed change"
            " (.github/guard-allow.txt in CI); unknown operations cannot be allowed",
        )


_GUARD_VERBS = {
    "replace": "would lose",
    "delete": "would lose",
    "drop": "retained in AWS but leaves the stack, unmanaged",
    "unprotect": "left without protect, so the engine would no longer refuse to delete",
    "unknown-op": "cannot judge",
}


def _render_guard(result: GuardResult, unused: list[str]) -> None:
    """One block per finding: readable in a narrow CI log as well as a terminal."""
    for finding in result.findings:
        mark = "[green]allowed[/green]" if finding.allowed else "[bold red]BLOCKED[/bold red]"
        console.print(f"{mark} {finding.effect} [bold]{finding.name}[/bold] ({finding.type})")
        console.print(f"    urn: {finding.urn}", soft_wrap=True)
        if finding.reasons:
            console.print(f"    forced by: {', '.join(finding.reasons)}")
        console.print(f"    steps: {', '.join(finding.ops)}")
        console.print(f"    {_GUARD_VERBS[finding.effect]}: {finding.risk}")
    for entry in unused:
        console.print(f"[yellow]note:[/yellow] --allow {entry} matched nothing in this preview")
    if result.passed:
        console.print(
            f"[green]guard passed[/green]: {result.steps_examined} steps examined, "
            "no stateful resource deleted or replaced without an allow entry"
        )
