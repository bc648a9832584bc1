"""The DR runbooks' dependency graphs: no step waits on one it does not depend on, and the floor they allow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from automation.runbook import Parallel, Runbook
from automation.runbooks.failback import (
    prepare_graph,
    prepare_runbook,
    rollback_graph,
    rollback_runbook,
    switch_graph,
    switch_runbook,
)
from automation.runbooks.failover import (
    ALLOW_WRITES_STEP,
    FULL_SIZE_STEP,
    READY_STEP,
    SCALE_STEP,
    UPDATE_STEP,
    WRITER_FENCE_STEP,
    failover_graph,
    failover_runbook,
)
from automation.runbooks.graph import Node, RunbookGraph, closure, needless_waits, structural_waits
from automation.timings import Op
from components.config import PlatformConfig, parse_config
from tests.conftest import STATE_OVERRIDES, prod_config
from tests.dr_world import Dr

# (runbook builder, graph builder, the config state it starts from)
RUNBOOKS: dict[str, tuple[Callable[[Dr], Runbook], Callable[[PlatformConfig], RunbookGraph], str]] = {
    "failover-emergency": (
        lambda dr: failover_runbook(dr.ctx, "emergency"),
        lambda cfg: failover_graph(cfg, "emergency"),
        "steady",
    ),
    "failover-graceful": (
        lambda dr: failover_runbook(dr.ctx, "graceful"),
        lambda cfg: failover_graph(cfg, "graceful"),
        "steady",
    ),
    "failback-prepare": (lambda dr: prepare_runbook(dr.ctx), prepare_graph, "failed-over"),
    "failback-switch": (lambda dr: switch_runbook(dr.ctx), switch_graph, "resyncing"),
    "failback-rollback": (lambda dr: rollback_runbook(dr.ctx), rollback_graph, "resyncing"),
}


def prod_config_of(name: str) -> PlatformConfig:
    return parse_config(prod_config(**STATE_OVERRIDES[RUNBOOKS[name][2]]))


def built(name: str, tmp_path: Path) -> tuple[Runbook, RunbookGraph]:
    build_runbook, build_graph, state = RUNBOOKS[name]
    dr = Dr(tmp_path, config=prod_config(**STATE_OVERRIDES[state]))
    return build_runbook(dr), build_graph(dr.cfg)


@pytest.mark.parametrize("name", sorted(RUNBOOKS))
def test_no_step_waits_on_a_step_it_does_not_depend_on(name: str, tmp_path: Path) -> None:
    runbook, graph = built(name, tmp_path)
    assert needless_waits(runbook, graph) == {}
    # ... and every documented dependency is waited for: the graph is what runs.
    waits = closure(structural_waits(runbook))
    assert all(waits[step] >= deps for step, deps in closure(graph.dependencies()).items())


@pytest.mark.parametrize("name", sorted(RUNBOOKS))
def test_every_dependency_says_why(name: str, tmp_path: Path) -> None:
    _, graph = built(name, tmp_path)
    assert all(len(reason) > 20 for node in graph.nodes for reason in node.after.values())


def test_a_step_run_after_one_it_does_not_depend_on_is_found(tmp_path: Path) -> None:
    """The check itself fails on a runbook that runs its graph's steps one after another."""
    runbook, graph = built("failover-emergency", tmp_path)
    (group,) = runbook.items
    assert isinstance(group, Parallel)
    sequential = Runbook(runbook.name, runbook.description, items=group.steps)
    found = needless_waits(sequential, graph)
    assert READY_STEP in found[UPDATE_STEP]
    # One extra edge is enough to be found too.
    edges = {**group.after, UPDATE_STEP: (*group.after[UPDATE_STEP], READY_STEP)}
    extra = Parallel(group.name, group.steps, after=edges)
    found = needless_waits(Runbook(runbook.name, runbook.description, items=(extra,)), graph)
    assert found[UPDATE_STEP] == {READY_STEP}


@pytest.mark.parametrize("name", sorted(RUNBOOKS))
def test_the_modelled_rto_of_each_built_runbook_is_its_floor(name: str, tmp_path: Path) -> None:
    runbook, graph = built(name, tmp_path)
    cfg = prod_config_of(name)
    assert graph.modelled_seconds(runbook, cfg) == pytest.approx(graph.floor(cfg).typical_seconds)


def test_a_needless_wait_on_the_way_to_verification_lengthens_the_modelled_rto(tmp_path: Path) -> None:
    runbook, graph = built("failover-emergency", tmp_path)
    cfg = prod_config_of("failover-emergency")
    floor = graph.floor(cfg).typical_seconds
    (group,) = runbook.items
    assert isinstance(group, Parallel)
    times = graph.schedule(cfg)
    # The promotion made to wait for the DR nodes too: it starts when they are Ready, and verification with it.
    edges = {**group.after, UPDATE_STEP: (*group.after[UPDATE_STEP], READY_STEP)}
    waiting = Runbook(runbook.name, runbook.description, items=(Parallel(group.name, group.steps, after=edges),))
    delay = times[READY_STEP][1] - times[UPDATE_STEP][0]
    assert delay > 0
    assert graph.modelled_seconds(waiting, cfg) == pytest.approx(floor + delay)
    # Every step one after another, as a plain list of steps runs them: far over the floor.
    sequential = Runbook(runbook.name, runbook.description, items=group.steps)
    assert graph.modelled_seconds(sequential, cfg) > 1.1 * floor
    with pytest.raises(ValueError, match="differ from its nodes"):
        graph.modelled_seconds(Runbook(runbook.name, runbook.description, items=group.steps[:-1]), cfg)


def test_neither_the_promotion_nor_the_verification_waits_for_the_dr_node_groups_full_size(tmp_path: Path) -> None:
    """A regional event is when EC2 capacity is short: the emergency promotion waits for no node, verification for
    the node group's minimum, and the rest of its full size comes after verification, outside the RTO. A planned
    switch stops writes only once that minimum serves (both regions are up: nothing is lost by waiting)."""
    cfg = Dr(tmp_path, config=prod_config(nodeGroupFull='{"min": 2, "desired": 3, "max": 9}')).cfg
    for mode in ("emergency", "graceful"):
        graph = failover_graph(cfg, mode)
        dependencies = closure(graph.dependencies())
        assert (READY_STEP in dependencies[UPDATE_STEP]) is (mode == "graceful")
        assert FULL_SIZE_STEP not in dependencies[graph.verified_by]
        assert FULL_SIZE_STEP not in graph.floor(cfg).critical_path
    runbook = failover_runbook(
        Dr(tmp_path / "run", config=prod_config(nodeGroupFull='{"min": 2, "desired": 3, "max": 9}')).ctx, "emergency"
    )
    steps = {step.name: step for step, _ in runbook.steps()}
    assert steps[READY_STEP].description.startswith("2 nodes") and steps[FULL_SIZE_STEP].description.startswith(
        "3 nodes"
    )


def test_the_failback_read_only_window_holds_only_what_the_final_sync_needs(tmp_path: Path) -> None:
    """Scaling the primary's compute happens before the fence: only the final sync and the switch are inside."""
    graph = switch_graph(Dr(tmp_path, config=prod_config(**STATE_OVERRIDES["resyncing"])).cfg)
    floor = graph.floor(Dr(tmp_path, config=prod_config(**STATE_OVERRIDES["resyncing"])).cfg)
    fence = next(step for step in floor.steps if step.name == graph.disruption_starts_at)
    inside = [step.name for step in floor.steps if step.critical and step.start >= fence.start]
    assert not any("nodes_ready" in name or "scale" in name for name in inside)


def test_a_graceful_failover_fences_the_primary_writer_only_once_dr_is_ready(tmp_path: Path) -> None:
    """W5: the write fence waits for the DR region's serving nodes and its writable parameter group; the time before
    it is not in the RTO of a planned switch (users are served as usual until the fence)."""
    cfg = Dr(tmp_path, config=prod_config()).cfg
    graph = failover_graph(cfg, "graceful")
    fence_waits = closure(graph.dependencies())[WRITER_FENCE_STEP]
    assert {READY_STEP, SCALE_STEP, ALLOW_WRITES_STEP} <= fence_waits
    assert FULL_SIZE_STEP not in fence_waits  # the minimum that serves, not the full size
    floor = graph.floor(cfg)
    fence = next(step for step in floor.steps if step.name == WRITER_FENCE_STEP)
    assert fence.start > 0 and floor.starts_at == WRITER_FENCE_STEP


def test_a_graph_with_an_unknown_dependency_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown dependencies"):
        RunbookGraph("x", (Node("verify", {"promote": "needs the writer"}, (Op.VERIFY_SERVICES,)),), "verify", None)
