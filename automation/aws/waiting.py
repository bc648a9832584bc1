"""Time for readers and actions: the injectable clock and one bounded polling loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

from automation.aws.clients import RegionUnreachableError
from automation.errors import DrctlError

# The runbook engine's clock, so a run (or the sandbox's latency model) times steps and AWS waits alike.
from automation.journal import Clock, SystemClock

T = TypeVar("T")


SYSTEM_CLOCK = SystemClock()


class WaitTimeoutError(DrctlError):
    """A wait ran out of time; the message names what was awaited and what was last seen."""

    def __init__(self, what: str, timeout_seconds: float, last_seen: str) -> None:
        super().__init__(
            f"timed out after {timeout_seconds:g}s waiting for {what}; last seen: {last_seen}",
            hint="the action is safe to repeat: re-running the step waits again without redoing what was done",
        )
        self.what = what


@dataclass(frozen=True)
class Observation(Generic[T]):
    """One poll: whether the wait is over, what was read, and how to describe it in a timeout."""

    done: bool
    value: T
    note: str


def wait_for(
    what: str,
    probe: Callable[[], Observation[T]],
    *,
    timeout_seconds: float,
    interval_seconds: float,
    clock: Clock,
) -> T:
    """Poll `probe` until it reports done; raise `WaitTimeoutError` naming `what` at the deadline.

    A poll that finds the region unreachable counts as not done yet: a network
    blip during a ten-minute wait should not abort a failover, but a region that
    stays away still ends in a timeout that says so.
    """
    deadline = clock.now() + timedelta(seconds=timeout_seconds)
    while True:
        try:
            observation = probe()
        except RegionUnreachableError as error:
            last_seen = str(error)
        else:
            if observation.done:
                return observation.value
            last_seen = observation.note
        remaining = (deadline - clock.now()).total_seconds()
        if remaining <= 0:
            raise WaitTimeoutError(what, timeout_seconds, last_seen)
        clock.sleep(min(interval_seconds, remaining))
