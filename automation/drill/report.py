"""The drill report: one JSON document (the contract in docs/drills.md) and the same facts as Markdown.

Times are modelled (the sandbox's latency clock, from a fixed epoch); the
report says so in its title and lists what the sandbox simulated.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automation import timings
from automation.errors import DrctlError
from automation.journal import RunRecord, parse_iso, seconds_between
from automation.report import step_fields
from automation.runbook import DATA_LOSS_WINDOW, DISRUPTION_STARTED_AT
from automation.runbooks.context import FOLLOW_UPS, NOT_RECOVERED, WARNINGS
from automation.runbooks.failover import failover_graph
from automation.sandbox import SIMULATED
from automation.sandbox.dataplane import Survival

if TYPE_CHECKING:
    from automation.drill.run import Drill
    from automation.drill.scenarios import DrillResult

REPORT_SCHEMA = 2
CRITICAL, WARNING, INFO = "critical", "warning", "info"
SEVERITIES = (CRITICAL, WARNING, INFO)

BAR_WIDTH = 40
ZERO_PHASES = ("fault", "failover")
"""The timeline counts from the first fault (or the failover, when the scenario injects none before it)."""


def build_report(
    drill: Drill, result: DrillResult, failover: dict[str, Any], *, drill_id: str, wall_clock: dict[str, str]
) -> dict[str, Any]:
    sandbox, scenario, cfg = drill.sandbox, drill.scenario, drill.sandbox.cfg
    failover_run = next((run for run in drill.runs if run.runbook == "failover"), None)
    rto = rto_measure(drill, failover_run)
    loss = failover["loss"]
    rpo = loss.loss_window_seconds if loss is not None else None
    latency = failover["latency"]
    expected = scenario.expected_result(drill.forced)
    outputs = sandbox.stack.current_outputs()
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "mode": "sandbox",
        "simulation": True,
        "drill_id": drill_id,
        "wall_clock": {**wall_clock, "seconds": seconds_between(wall_clock["started_at"], wall_clock["finished_at"])},
        "scenario": scenario.name,
        "summary": scenario.summary,
        "failover_mode": scenario.mode.value,
        "forced": drill.forced,
        "reason": drill.reason,
        "result": result.value,
        "expected_result": expected.value,
        "as_expected": result is expected,
        "rto_seconds": rto["seconds"],
        "rto_floor_seconds": rto["floor_seconds"],
        "rto_floor_ratio": rto["ratio"],
        "rto_from": rto["from"],
        "rpo_seconds": rpo,
        "targets": {"rto_seconds": cfg.rto_seconds, "rpo_seconds": cfg.rpo_seconds},
        "objectives": {
            "rto": _objective(rto["seconds"], cfg.rto_seconds),
            "rpo": _objective(rpo, cfg.rpo_seconds),
        },
        "latency": {
            "rto_seconds": rto["seconds"],
            "rto_if_sequential_seconds": rto["sequential_seconds"],
            "detection_seconds": _detection_seconds(drill),
            "failover_modelled_seconds": latency["modelled_seconds"],
            "floor": rto["floor"],
            "charges": latency["charges"],
            "small_waits": latency["small_waits"],
        },
        "durations": [entry.to_json() for entry in timings.table(cfg)],
        "data_loss_window": None
        if loss is None
        else {
            "database": loss.node,
            "stopped_at": loss.stopped_at.isoformat(),
            "replicated_through": loss.replicated_through.isoformat(),
            "loss_window_seconds": loss.loss_window_seconds,
            "measured_by_runbook_seconds": failover_run.measurements.get(DATA_LOSS_WINDOW) if failover_run else None,
        },
        "isolation": failover["isolation"],
        "split_brain": failover.get("split_brain"),
        "concurrent_stack_updates": sandbox.stack.concurrent_updates,
        "cache": failover_run.measurements.get("cache_state") if failover_run else None,
        "not_recovered": list((failover_run.measurements.get(NOT_RECOVERED) or []) if failover_run else []),
        "preflight": [
            {"name": check.name, "passed": check.passed, "detail": check.detail}
            for check in (failover_run.preflight if failover_run else [])
        ],
        "steps": [step_row(run, step) for run in drill.runs for step in run.steps],
        "runs": [run_summary(run) for run in drill.runs],
        "data": {
            name: {"region": point["region"], "at": point["at"], "kinds": survival_rows(point["kinds"])}
            for name, point in drill.checkpoints.items()
        },
        "final_state": {"activeRegion": outputs.get("activeRegion"), "drState": outputs.get("drState")},
        "timeline": _timeline(drill),
        "faults": list(sandbox.faults),
        "simulated": list(SIMULATED),
        "journal": {"run_ids": [run.run_id for run in drill.runs]},
        "epoch": sandbox.clock.start.isoformat(),
        "scale": sandbox.clock.scale,
    }
    findings = _findings(drill, report)
    report["findings"] = findings
    report["findings_by_severity"] = {level: sum(1 for f in findings if f["severity"] == level) for level in SEVERITIES}
    report["verdict"] = verdict(report)
    return report


def step_row(run: RunRecord, step: Any) -> dict[str, Any]:
    """One step of a run as the report lists it (sandbox and live drills)."""
    return {"runbook": run.runbook, "run_id": run.run_id, **step_fields(step)}


def rto_measure(drill: Drill, run: RunRecord | None) -> dict[str, Any]:
    """The RTO from the disruption's start to verified service, and the floor of the same span.

    The disruption starts with the outage (the primary region's failure), else with the write fence of a
    planned switch, else (an emergency failover without an outage) with drctl's start, whose floor then leaves
    out the detection.
    """
    empty = {
        "seconds": None,
        "floor_seconds": None,
        "ratio": None,
        "from": None,
        "sequential_seconds": None,
        "floor": None,
    }
    if run is None or not run.verified_at:
        return empty
    cfg = drill.sandbox.cfg
    floor = failover_graph(cfg, drill.scenario.mode).floor(cfg)
    floor_seconds = floor.typical_seconds
    if drill.outage_started is not None:
        start, basis = drill.outage_started, "outage"
    elif run.measurements.get(DISRUPTION_STARTED_AT):
        start, basis = parse_iso(run.measurements[DISRUPTION_STARTED_AT]), "write fence"
    else:
        start, basis = parse_iso(run.started_at), "drctl start"
        floor_seconds = floor.from_run_start(cfg)
    verified = parse_iso(run.verified_at)
    seconds = round((verified - start).total_seconds(), 3)
    # The same steps one after another: the time before the run's first step, then every step that ended by
    # the verification, end to end.
    before = max(0.0, (parse_iso(run.started_at) - start).total_seconds())
    steps = [s for s in run.steps if s.finished_at and parse_iso(s.finished_at) <= verified]
    return {
        "seconds": seconds,
        "floor_seconds": floor_seconds,
        "ratio": round(seconds / floor_seconds, 3) if floor_seconds else None,
        "from": basis,
        "sequential_seconds": round(before + sum(s.duration_seconds or 0 for s in steps), 3),
        "floor": floor.to_json(cfg),
    }


def survival_rows(survivals: list[Survival]) -> list[dict[str, Any]]:
    return [survival.to_dict() for survival in survivals]


def run_summary(run: RunRecord) -> dict[str, Any]:
    return {
        "runbook": run.runbook,
        "run_id": run.run_id,
        "status": run.status.value,
        "started_at": run.started_at,
        "verified_at": run.verified_at,
        "finished_at": run.finished_at,
        "duration_seconds": seconds_between(run.started_at, run.finished_at),
        "rto_seconds": seconds_between(run.started_at, run.verified_at),
        "data_loss_window_seconds": run.measurements.get(DATA_LOSS_WINDOW),
        "attempts": list(run.attempts),
        "resumed": len(run.attempts) > 1,
        "warnings": list(run.measurements.get(WARNINGS) or []),
        "follow_ups": list(run.measurements.get(FOLLOW_UPS) or []),
        "not_recovered": list(run.measurements.get(NOT_RECOVERED) or []),
        "error": run.error,
    }


def _objective(measured: float | None, target: int) -> dict[str, Any]:
    return {
        "measured_seconds": measured,
        "target_seconds": target,
        "met": None if measured is None else measured <= target,
    }


def _detection_seconds(drill: Drill) -> float | None:
    phases = [event for event in drill.events if event.phase in ("fault", "detect")]
    detected = next((event for event in phases if event.phase == "detect"), None)
    if detected is None:
        return None
    return (detected.at - phases[0].at).total_seconds()


def _zero(drill: Drill) -> Any:
    return next((event.at for event in drill.events if event.phase in ZERO_PHASES), drill.sandbox.clock.start)


def _timeline(drill: Drill) -> list[dict[str, Any]]:
    """The drill's own events and every step's end, in modelled time, counted from the first fault."""
    zero = _zero(drill)
    entries = [(event.at, float(index), event.phase, event.text) for index, event in enumerate(drill.events)]
    for run in drill.runs:
        for order, step in enumerate(run.steps):
            if step.finished_at is None:
                continue
            # At equal times a step comes after the event that started its run and before the next one.
            rank = drill.run_anchors[run.run_id] + (order + 1) / (len(run.steps) + 1)
            text = f"{step.name}: {step.status.value} after {step.duration_seconds:g} s"
            entries.append((parse_iso(step.finished_at), rank, run.runbook, text))
    entries.sort(key=lambda entry: (entry[0], entry[1]))
    return [
        {"at": at.isoformat(), "offset_seconds": (at - zero).total_seconds(), "phase": phase, "event": text}
        for at, _, phase, text in entries
    ]


def _findings(drill: Drill, report: dict[str, Any]) -> list[dict[str, str]]:
    """What an operator should read first, by severity.

    critical: the platform did something it must not (an unexpected result, split brain, overlapping stack
    updates, a call to the failed region, data written after the failover missing at the end, a part left not
    recovered that the scenario does not expect); warning: a missed objective, a runbook's warning, a part left
    not recovered as the scenario expects (the sandbox models AWS refusing it); info: data that came back,
    follow-ups.
    """
    found: list[dict[str, str]] = []

    def add(severity: str, text: str) -> None:
        if not any(f["text"] == text for f in found):
            found.append({"severity": severity, "text": text})

    if not report["as_expected"]:
        add(CRITICAL, f"result {report['result']}, expected {report['expected_result']}")
    split = report.get("split_brain") or {}
    if split.get("requests_to_former_region") or split.get("writes_accepted_by_former_writer"):
        add(
            CRITICAL,
            f"SPLIT BRAIN: the former region got {split['requests_to_former_region']} requests and its writer "
            f"acknowledged {split['writes_accepted_by_former_writer']} writes after the failover",
        )
    if report.get("concurrent_stack_updates"):
        add(CRITICAL, f"{report['concurrent_stack_updates']} stack update(s) started while another still ran")
    calls = report["isolation"]["calls_to_failed_region"]
    if calls:
        add(CRITICAL, f"the failover called the failed region {report['isolation']['failed_region']} {calls} times")
    for name, objective in report["objectives"].items():
        if objective["met"] is False:
            add(
                WARNING,
                f"{name.upper()} missed: {objective['measured_seconds']:g} s against {objective['target_seconds']} s",
            )
    after, final = drill.checkpoints.get("after-failover"), drill.checkpoints.get("final")
    if after and final:
        before_lost = {s.kind: set(s.lost) for s in after["kinds"]}
        for survival in final["kinds"]:
            new = set(survival.lost) - before_lost.get(survival.kind, set())
            back = before_lost.get(survival.kind, set()) - set(survival.lost)
            if new:
                add(
                    CRITICAL,
                    f"DATA MISSING: {len(new)} {survival.kind} written after the failover are missing from "
                    f"{final['region']} at the end (see the runbooks' follow-ups)",
                )
            if back:
                # A demoted Redis primary that rejoins does a full sync and loses what it alone held (catalogue:
                # elasticache.rejoining-primary-full-sync): keys come back only from a holder that was never demoted.
                holder = {
                    "cache-keys": "the cache never failed over: its primary kept them",
                    "s3-objects": "the former primary's bucket kept them",
                    "database-rows": "the former writer's data was restored",
                }.get(survival.kind, "the former primary kept them")
                add(INFO, f"{len(back)} {survival.kind} lost at failover are back in {final['region']}: {holder}")
    expected_parts = drill.scenario.expected_not_recovered
    for part in report["not_recovered"]:
        # not_recovered() texts begin with the part's name and end with what recovers it.
        expected = part.split(" ", 1)[0] in expected_parts
        add(
            WARNING if expected else CRITICAL,
            f"NOT RECOVERED by the failover{' (as this scenario expects)' if expected else ''}: {part}",
        )
    for run in report["runs"]:
        for warning in run["warnings"]:
            add(WARNING, f"{run['runbook']}: {warning}")
        for follow in run["follow_ups"]:
            add(INFO, f"{run['runbook']}: follow-up: {follow}")
    return found


def verdict(report: dict[str, Any]) -> str:
    """One line: the result against the expected one, then the findings by severity, the critical ones named."""
    counts = report["findings_by_severity"]
    head = "as expected" if report["as_expected"] else f"EXPECTED {report['expected_result']}"
    critical = [
        f["text"] for f in report["findings"] if f["severity"] == CRITICAL and not f["text"].startswith("result ")
    ]
    tally = ", ".join(f"{counts[level]} {level}" for level in SEVERITIES if counts[level]) or "no findings"
    line = f"{report['result']} ({head}); findings: {tally}"
    return line + (f": {'; '.join(critical)}" if critical else "")


def passed(report: dict[str, Any]) -> bool:
    """The drill's exit status: the expected result and no critical finding."""
    return report["as_expected"] and not report["findings_by_severity"][CRITICAL]


# --- Markdown -----------------------------------------------------------------------------------


def render_markdown(report: dict[str, Any]) -> str:
    durations = report["durations"]
    estimated = [d["operation"] for d in durations if d["basis"] == timings.ESTIMATED]
    lines = [
        f"# DR drill (SIMULATION): {report['scenario']}: {report['verdict']}",
        "",
        f"> Offline sandbox: moto stood in for AWS and no real infrastructure was touched. Every duration is "
        f"modelled from automation/timings.py: {len(durations) - len(estimated)} of its {len(durations)} figures are "
        f"documented, {len(estimated)} are our estimates ({', '.join(estimated)}); see the durations at the end. What "
        "was simulated, and how, is listed there too.",
        "",
        f"- drill `{report['drill_id']}`, run {report['wall_clock']['started_at']} to "
        f"{report['wall_clock']['finished_at']} (wall clock; the times below are modelled)",
        f"- scenario: {report['summary']}",
        f"- failover mode: {report['failover_mode']}" + ("; forced with --force" if report["forced"] else ""),
        f"- reason: {report['reason']}",
        f"- final state: activeRegion {report['final_state']['activeRegion']}, drState "
        f"{report['final_state']['drState']}",
        "",
        "| measure | modelled | target | verdict |",
        "|---|---|---|---|",
        f"| RTO (from the {report['rto_from'] or 'disruption'} to verified service) | "
        f"{_seconds(report['rto_seconds'])} | {report['targets']['rto_seconds']} s | "
        f"{_met(report['objectives']['rto']['met'])} |",
        f"| RTO floor of the architecture (detection, readiness, the longest dependency chain, verification) | "
        f"{_seconds(report['rto_floor_seconds'])} | | ratio {_number(report['rto_floor_ratio'])} |",
        f"| RPO (transactional data-loss window) | {_seconds(report['rpo_seconds'])} | "
        f"{report['targets']['rpo_seconds']} s | {_met(report['objectives']['rpo']['met'])} |",
        f"| the same steps one after another | {_seconds(report['latency']['rto_if_sequential_seconds'])} | "
        f"{report['targets']['rto_seconds']} s | |",
    ]
    if report["latency"]["detection_seconds"] is not None:
        lines.append(
            f"| health-check detection before drctl starts | {_seconds(report['latency']['detection_seconds'])} "
            "| | part of the RTO above |"
        )
    floor = report["latency"]["floor"]
    if floor:
        lines += ["", f"Critical path of the floor: {' -> '.join(floor['criticalPath'])}."]
    isolation = report["isolation"]
    if isolation["failed_region"]:
        lines += [
            "",
            f"Calls to the failed region {isolation['failed_region']} during the failover: "
            f"**{isolation['calls_to_failed_region']}** (of {isolation['calls']} API calls).",
        ]
    split = report.get("split_brain")
    if split:
        unfenced = split["unfenced_seconds"]
        lines += [
            "",
            f"Split brain: **{split['requests_to_former_region']}** requests reached the former region and its writer "
            f"{split['former_writer']} acknowledged **{split['writes_accepted_by_former_writer']}** writes after the "
            "failover"
            + (f"; it answered unfenced for {unfenced:g} s after it returned." if unfenced is not None else "."),
        ]
    lines += [
        "",
        f"Stack updates started while another still ran: **{report['concurrent_stack_updates']}**."
        + (f" Cache after the failover: {report['cache']}." if report.get("cache") else ""),
    ]
    if report["findings"]:
        lines += ["", "## Findings", ""]
        lines += [f"- **{f['severity']}**: {f['text']}" for f in report["findings"]]
    lines += ["", "## Timeline", "", "| T (s) | modelled time | phase | event |", "|---:|---|---|---|"]
    for entry in report["timeline"]:
        lines.append(f"| {entry['offset_seconds']:+g} | {entry['at']} | {entry['phase']} | {_cell(entry['event'])} |")
    for run in report["runs"]:
        lines += ["", f"## {run['runbook']}: {run['status']}" + (" (resumed)" if run["resumed"] else ""), ""]
        lines += [f"run `{run['run_id']}`, attempts: {', '.join(a['at'] for a in run['attempts'])}", ""]
        lines += ["```text", *_bars([s for s in report["steps"] if s["run_id"] == run["run_id"]]), "```"]
    if report["preflight"]:
        lines += ["", "## Failover preflight", "", "| check | result | detail |", "|---|---|---|"]
        lines += [
            f"| {check['name']} | {'pass' if check['passed'] else 'REFUSES'} | {_cell(check['detail'])} |"
            for check in report["preflight"]
        ]
    lines += data_table(report)
    lines += ["", "## What the sandbox simulated", "", *[f"- {item}" for item in report["simulated"]]]
    lines += ["", "Faults injected:", "", *[f"- {fault}" for fault in report["faults"]]]
    lines += [
        "",
        "## Durations (automation/timings.py)",
        "",
        "| operation | typical (s) | worst (s) | basis | catalogue |",
    ]
    lines.append("|---|---:|---:|---|---|")
    lines += [
        f"| {d['operation']} | {d['typicalSeconds']:g} | {d['worstSeconds']:g} | {d['basis']} | "
        f"{d['catalogue'] or '-'} |"
        for d in durations
    ]
    return "\n".join(lines) + "\n"


def data_table(report: dict[str, Any]) -> list[str]:
    """The data-loss table: per checkpoint and kind of data, what was written, what survived (sandbox and live)."""
    lines = ["", "## Data", "", "| checkpoint | kind | holder | written | survived | lost | lost written |"]
    lines.append("|---|---|---|---:|---:|---:|---|")
    for name, point in report["data"].items():
        for kind in point["kinds"]:
            span = f"{kind['oldest_lost_at']} .. {kind['newest_lost_at']}" if kind["lost"] else ""
            lines.append(
                f"| {name} ({point['region']}) | {kind['kind']} | {kind['holder']} | {kind['written']} | "
                f"{kind['survived']} | {kind['lost']} | {span} |"
            )
    return lines


def _bars(steps: list[dict[str, Any]]) -> list[str]:
    """A text Gantt chart of one run's steps on its own modelled time axis."""
    timed = [step for step in steps if step["started_at"] and step["finished_at"]]
    if not timed:
        return [f"{step['name']}: {step['status']}" for step in steps]
    start = min(parse_iso(step["started_at"]) for step in timed)
    span = max((parse_iso(step["finished_at"]) - start).total_seconds() for step in timed) or 1.0
    width = max(len(step["name"]) for step in steps)
    lines = []
    for step in steps:
        if not (step["started_at"] and step["finished_at"]):
            lines.append(f"{step['name']:<{width}} |{' ' * BAR_WIDTH}| {step['status']}")
            continue
        begin = (parse_iso(step["started_at"]) - start).total_seconds()
        end = (parse_iso(step["finished_at"]) - start).total_seconds()
        left = round(begin / span * BAR_WIDTH)
        filled = max(1, round(end / span * BAR_WIDTH) - left)
        bar = (" " * left + "#" * filled).ljust(BAR_WIDTH)[:BAR_WIDTH]
        attempts = f", {step['attempts']} attempts" if step["attempts"] > 1 else ""
        lines.append(f"{step['name']:<{width}} |{bar}| {begin:g}-{end:g} s {step['status']}{attempts}")
    return lines


def render_summary(reports: list[dict[str, Any]]) -> str:
    """The table `--scenario all` prints: one line per scenario."""
    lines = [
        "# DR drills (SIMULATION): summary",
        "",
        "| scenario | result | expected | RTO (s) | floor (s) | ratio | RPO (s) | findings | verdict |",
        "|---|---|---|---:|---:|---:|---:|---|---|",
    ]
    for report in reports:
        counts = report["findings_by_severity"]
        tally = ", ".join(f"{counts[level]} {level}" for level in SEVERITIES if counts[level]) or "-"
        outcome = "ok" if passed(report) else ("UNEXPECTED" if not report["as_expected"] else "CRITICAL FINDINGS")
        lines.append(
            f"| {report['scenario']} | {report['result']} | {report['expected_result']} | "
            f"{_number(report['rto_seconds'])} | {_number(report['rto_floor_seconds'])} | "
            f"{_number(report['rto_floor_ratio'])} | {_number(report['rpo_seconds'])} | {tally} | {outcome} |"
        )
    return "\n".join(lines) + "\n"


def check_report_dir(directory: Path) -> None:
    """Refuse a report directory that cannot take the reports, before any drill starts."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".drctl-write-check-"):
            pass
    except OSError as error:
        raise DrctlError(
            f"--report-dir {directory}: the drill reports cannot be written there ({error.strerror or error})",
            hint="pass a directory you can write to (it is created if missing), e.g. --report-dir out/drills",
        ) from None


def write_report(report: dict[str, Any], directory: Path) -> list[Path]:
    """`<drill id>.json` and `.md` in `directory`: every run its own files, written whole (never half)."""
    base = directory / report["drill_id"]
    json_path, markdown_path = base.with_suffix(".json"), base.with_suffix(".md")
    write_whole(json_path, json.dumps(report, indent=2) + "\n")
    write_whole(markdown_path, render_markdown(report))
    return [json_path, markdown_path]


def write_whole(path: Path, text: str) -> None:
    """A reader (or a concurrent drill) sees the old file or the new one, never a part."""
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as partial:
        partial.write(text)
    os.replace(partial.name, path)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g} s"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _met(met: bool | None) -> str:
    return {True: "met", False: "MISSED", None: "not measured"}[met]


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")
