"""Time the sandbox drill of each scenario and the offline `drctl plan`, as a user runs them: fresh processes.

    python bench/bench_drill.py [--repeat N] [--scenario NAME ...] [--all] [--out out/bench/drill-bench.json]

Each command runs `--repeat` times (default 3); the table shows min, median
and max wall time, and for drills the modelled RTO (from the outage, or the
write fence of a planned switch), the floor of the failover's dependency graph
over the same span, their ratio and the RPO of every repetition, which must
not vary (a drill is deterministic). Run by hand or `make bench`,
never by the test suite. The figures depend on the machine: say which when
quoting them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automation.drill.scenarios import SCENARIOS  # noqa: E402  (light: no moto, no pulumi)

DRCTL = [sys.executable, "-c", "from automation.cli import main; main()"]


def timed(arguments: list[str]) -> tuple[float, dict[str, Any] | list[Any] | None, int]:
    """Wall seconds, the parsed JSON on stdout (None if there is none) and the exit code of one drctl run."""
    started = time.perf_counter()
    finished = subprocess.run([*DRCTL, *arguments], cwd=ROOT, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    try:
        document = json.loads(finished.stdout)
    except json.JSONDecodeError:
        document = None
    return elapsed, document, finished.returncode


def measure(name: str, arguments: list[str], repeat: int) -> dict[str, Any]:
    seconds, modelled, codes = [], [], []
    for _ in range(repeat):
        elapsed, document, code = timed(arguments)
        seconds.append(round(elapsed, 2))
        codes.append(code)
        if isinstance(document, dict) and "rto_seconds" in document:
            modelled.append(
                (
                    document["result"],
                    document["rto_seconds"],
                    document["rto_floor_seconds"],
                    document["rto_floor_ratio"],
                    document["rpo_seconds"],
                )
            )
        print(f"  {name}: {elapsed:.1f} s (exit {code})", file=sys.stderr)
    return {
        "name": name,
        "command": "drctl " + " ".join(arguments),
        "seconds": seconds,
        "min": min(seconds),
        "median": statistics.median(seconds),
        "max": max(seconds),
        "exit_codes": codes,
        "modelled": [
            {"result": r, "rto_seconds": rto, "rto_floor_seconds": floor, "rto_floor_ratio": ratio, "rpo_seconds": rpo}
            for r, rto, floor, ratio, rpo in modelled
        ],
        "deterministic": len(set(modelled)) <= 1,
    }


def _figure(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS), help="default: every scenario")
    parser.add_argument("--all", action="store_true", help="also time `drctl drill --sandbox --scenario all` once")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "bench" / "drill-bench.json")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="drill-bench-") as reports:
        cases = [("plan --to failed-over", ["plan", "--to", "failed-over", "--json"])]
        cases += [
            (f"drill {name}", ["drill", "--sandbox", "--scenario", name, "--json", "--report-dir", reports])
            for name in options.scenario or SCENARIOS
        ]
        results = [measure(name, arguments, options.repeat) for name, arguments in cases]
        if options.all:
            every = ["drill", "--sandbox", "--scenario", "all", "--report-dir", reports]
            results.append(measure("drill all", every, 1))

    machine = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps({"machine": machine, "repeat": options.repeat, "results": results}, indent=2))

    header = "RTO s / floor s / ratio / RPO s (modelled)"
    print(f"\n{'command':<28} {'min s':>7} {'median s':>9} {'max s':>7}  {header:<44} deterministic")
    for result in results:
        keys = ("rto_seconds", "rto_floor_seconds", "rto_floor_ratio", "rpo_seconds")
        figures = {tuple(m[key] for key in keys) for m in result["modelled"]}
        modelled = ", ".join(" / ".join(map(_figure, each)) for each in sorted(figures, key=str)) or "-"
        print(
            f"{result['name']:<28} {result['min']:>7.1f} {result['median']:>9.1f} {result['max']:>7.1f}  "
            f"{modelled:<44} {'yes' if result['deterministic'] else 'NO'}"
        )
    print(f"\nmachine: {machine}; JSON: {options.out}")


if __name__ == "__main__":
    main()
