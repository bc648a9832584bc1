"""Write the values keys a Helm chart understands, for tests/test_chart_values.py.

Helm drops values keys a chart does not know without a word, so the program's
chart values are checked against the keys of the pinned chart versions, kept in
tests/fixtures/chart-values/. A key is known when the chart's values.yaml sets
it or a template reads it (`.Values.a.b`); a key a template renders whole
(`toYaml .Values.a.b`, or `with .Values.a.b` then `toYaml .`) is `opaque`: anything below it belongs to the program
that reads the rendered document (Alertmanager, Grafana), not to Helm.

    git -C /work/.mirror/prometheus-community+helm-charts/repo archive kube-prometheus-stack-88.5.3 \
        charts/kube-prometheus-stack | tar -x -C /tmp/charts
    python tools/chart_keys.py /tmp/charts/charts/kube-prometheus-stack \
        --source "prometheus-community/helm-charts tag kube-prometheus-stack-88.5.3" \
        --subchart grafana=/tmp/grafana/charts/grafana --subchart-source "grafana=grafana-community/..." \
        > tests/fixtures/chart-values/kube-prometheus-stack-88.5.3.keys
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

_PATH = r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)"
_VALUES_REF = re.compile(_PATH)
_RENDERED_WHOLE = re.compile(r"toYaml\s+\(?\s*" + _PATH)
# `{{- with .Values.a.b }} ... {{ toYaml . }}`: the other way a template renders a subtree whole.
_WITH_THEN_WHOLE = re.compile(r"with\s+" + _PATH + r"\s*-?}}(?:(?!{{-?\s*end).){0,200}?toYaml\s+\.\s", re.S)


def flatten(value: Any, prefix: str = "") -> Iterator[str]:
    """Every key path of a values document: `a.b`, lists as `a[]`, empty maps as leaves."""
    if isinstance(value, dict):
        for key, child in value.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            yield path
            yield from flatten(child, path)
    elif isinstance(value, list):
        for item in value:
            yield from flatten(item, f"{prefix}[]")


def chart_keys(chart: Path) -> tuple[set[str], set[str]]:
    """(known keys, opaque keys) of one chart directory, without its subcharts."""
    values = yaml.safe_load((chart / "values.yaml").read_text()) or {}
    known = set(flatten(values))
    opaque: set[str] = set()
    for template in (chart / "templates").rglob("*"):
        if not template.is_file():
            continue
        text = template.read_text(errors="replace")
        for match in _VALUES_REF.finditer(text):
            parts = match.group(1).strip(".").split(".")
            known.update(".".join(parts[: i + 1]) for i in range(len(parts)))
        for pattern in (_RENDERED_WHOLE, _WITH_THEN_WHOLE):
            opaque.update(match.group(1).strip(".") for match in pattern.finditer(text))
    return known, opaque


def chart_version(chart: Path) -> str:
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    return f"{meta['name']} {meta['version']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chart", type=Path)
    parser.add_argument("--source", required=True, help="where the chart came from (repository, tag, commit)")
    parser.add_argument("--subchart", action="append", default=[], help="ALIAS=DIR of a subchart's directory")
    parser.add_argument("--subchart-source", action="append", default=[], help="ALIAS=where it came from")
    args = parser.parse_args()

    known, opaque = chart_keys(args.chart)
    header = [f"# {chart_version(args.chart)}: {args.source}"]
    sources = dict(item.split("=", 1) for item in args.subchart_source)
    for item in args.subchart:
        alias, directory = item.split("=", 1)
        sub_known, sub_opaque = chart_keys(Path(directory))
        known |= {f"{alias}.{key}" for key in sub_known} | {alias}
        opaque |= {f"{alias}.{key}" for key in sub_opaque}
        header.append(f"# subchart {alias}: {chart_version(Path(directory))}: {sources.get(alias, '?')}")
    lines = [*header, *(f"{key} opaque" if key in opaque else key for key in sorted(known | opaque))]
    sys.stdout.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
