"""Sandbox DR drills: the production runbooks rehearsed against moto with faults, data and modelled time.

`scenarios` (the catalogue, light: `drctl --help` loads it), `run` (`run_drill`), `report` (JSON and
Markdown), `command` (the `drctl drill` command). See docs/drills.md.
"""
