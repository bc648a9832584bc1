"""The DR state machine as config: what drctl writes for each transition.

    steady --failover--> failed-over --failback prepare--> resyncing --failback switch--> steady

`transition_config` is the single definition of the config each arrow writes;
`drctl plan` evaluates it offline and the runbooks set it on the stack before
their update, so what is previewed is what is applied.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum

from automation.errors import DrctlError
from components.config import NAMESPACE, DrState, PlatformConfig, parse_config


class Transition(StrEnum):
    FAILOVER = "failover"
    FAILBACK_PREPARE = "failback-prepare"
    FAILBACK_SWITCH = "failback-switch"


# (from, to) -> the arrow; anything else the state machine does not allow.
TRANSITIONS: Mapping[tuple[DrState, DrState], Transition] = {
    (DrState.STEADY, DrState.FAILED_OVER): Transition.FAILOVER,
    (DrState.FAILED_OVER, DrState.RESYNCING): Transition.FAILBACK_PREPARE,
    (DrState.RESYNCING, DrState.STEADY): Transition.FAILBACK_SWITCH,
}


class TransitionError(DrctlError):
    """The DR state machine has no such arrow."""


def parse_state(value: DrState | str) -> DrState:
    try:
        return DrState(value)
    except ValueError:
        allowed = ", ".join(s.value for s in DrState)
        raise TransitionError(f"unknown DR state {value!r}; one of {allowed}") from None


def next_state(current: DrState) -> DrState:
    """The one state reachable from `current`."""
    return next(to for (start, to) in TRANSITIONS if start is current)


def transition_of(current: DrState, target: DrState) -> Transition:
    try:
        return TRANSITIONS[(current, target)]
    except KeyError:
        raise TransitionError(
            f"the DR state machine has no transition from {current.value} to {target.value}",
            hint=f"from {current.value} the only next state is {next_state(current).value} "
            "(steady -> failed-over -> resyncing -> steady)",
        ) from None


def transition_config(raw_config: Mapping[str, str], to_state: DrState | str) -> dict[str, str]:
    """The stack config after moving from the config's `drState` to `to_state`.

    Pure: takes and returns raw config strings (keys with or without the
    `dr-platform:` prefix; the result always carries it). The input is validated
    first and the result again, so an illegal or inconsistent config never
    reaches a stack.
    """
    current = parse_config(raw_config)
    target = parse_state(to_state)
    transition = transition_of(current.dr_state, target)
    config = {_qualified(k): v for k, v in raw_config.items()}
    config[_qualified("drState")] = target.value

    if transition is Transition.FAILOVER:
        # The old primary's database declaration is left exactly as it is, so
        # the failover update neither replaces nor deletes it.
        config[_qualified("activeRegion")] = current.dr_region
    elif transition is Transition.FAILBACK_PREPARE:
        # The former writer is kept (protected, for forensics); a new
        # generation is created as a replica of the DR writer.
        config[_qualified("activeRegion")] = current.dr_region
        config.update(_next_generation(current, "primary"))
    else:
        config[_qualified("activeRegion")] = current.primary_region
        config.update(_next_generation(current, "dr"))

    parse_config(config)
    return config


def rollback_config(raw_config: Mapping[str, str]) -> dict[str, str]:
    """The config that undoes a failback switch whose verification failed: back to `failed-over`.

    The DR writer (the generation the switch retained last) was only made
    read-only, so it becomes the current DR generation again; the primary's
    generation, promoted by the switch, stays current and standalone, which is
    how `failed-over` declares the primary. The switch's first update left the
    new DR replica out, so nothing of it exists to delete.
    """
    current = parse_config(raw_config)
    retained_dr = current.regions["dr"].db_retained_generations
    if current.dr_state is not DrState.STEADY or not retained_dr:
        raise TransitionError(
            f"only a failback switch can be rolled back: that needs drState steady with the former DR writer in "
            f"dbRetainedGenerations.dr, got drState {current.dr_state.value} and {list(retained_dr)}",
            hint="drctl failback rollback restores writes and the cache without a config change when the switch "
            "never wrote its config",
        )
    writer = max(retained_dr)
    generations = {r: current.regions[r].db_generation for r in current.regions}
    retained = {r: list(current.regions[r].db_retained_generations) for r in current.regions}
    generations["dr"] = writer
    retained["dr"].remove(writer)
    config = {_qualified(k): v for k, v in raw_config.items()}
    config[_qualified("drState")] = DrState.FAILED_OVER.value
    config[_qualified("activeRegion")] = current.dr_region
    config[_qualified("dbGeneration")] = json.dumps(generations)
    config[_qualified("dbRetainedGenerations")] = json.dumps(retained)
    parse_config(config)
    return config


def _next_generation(cfg: PlatformConfig, role: str) -> dict[str, str]:
    generations = {r: cfg.regions[r].db_generation for r in cfg.regions}
    retained = {r: list(cfg.regions[r].db_retained_generations) for r in cfg.regions}
    retained[role] = sorted({*retained[role], generations[role]})
    generations[role] += 1
    if role == "dr":
        # After a rolled-back switch the DR writer's generation can be behind the
        # primary's; a new DR replica must not look like a promoted one
        # (components.database._check_can_replicate).
        generations["dr"] = max(generations["dr"], generations["primary"])
    return {
        _qualified("dbGeneration"): json.dumps(generations),
        _qualified("dbRetainedGenerations"): json.dumps(retained),
    }


def _qualified(key: str) -> str:
    return key if ":" in key else f"{NAMESPACE}:{key}"
