"""The sandbox's latency model: a clock whose time is the modelled time of AWS operations.

moto answers at once, so a drill timed on the wall clock measures nothing. The
`LatencyClock` instead advances by the documented duration of each operation
(`automation.timings`: replica promotion, node group scale-up, DNS TTL...) when
the sandbox charges it, and by whatever a runbook sleeps while it polls. The
real process sleeps only `scale` times as long, so a 15-minute failover runs in
about a second; the modelled figures never depend on real time.

Parallel work costs its longest branch. Each thread has its own lane: a thread
starts where the thread that started it stood, a thread that reads the time
after its children finished continues after the latest of them, and a thread
that waited for others (`join`) continues after them. The engine runs each step
in a thread of its own and the steps of a `Parallel` group in sibling threads,
so a group costs its longest chain. Knowing which thread started which needs
`threading.Thread.start` to record its caller: the clock does that while it is
entered (`with clock:`), and restores the original on exit.

The many small waits (an AWS API call, a Pulumi CLI read) are charged too, but
a summary lists only the operations; the small ones are counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from automation.timings import Op, latency, timing
from components.config import PlatformConfig

DEFAULT_SCALE = 0.001
"""Real seconds slept per modelled second: a 15-minute failover takes about a second."""
SMALL_WAITS = (Op.AWS_API_CALL.value, Op.PULUMI_CLI_CALL.value)
"""Charged on every call: reports count them instead of listing each."""

_PARENT_ATTRIBUTE = "_sandbox_clock_parent"
_ORIGINAL_START = threading.Thread.start
_tracking_lock = threading.Lock()
_tracking_users = 0


def _start_recording_parent(self: threading.Thread) -> None:
    setattr(self, _PARENT_ATTRIBUTE, threading.current_thread())
    _ORIGINAL_START(self)


@dataclass
class _Lane:
    cursor: float
    children: list[_Lane] = field(default_factory=list)

    def horizon(self) -> float:
        """Where this lane stands once every thread it started has finished."""
        return max([self.cursor, *(child.horizon() for child in self.children)])


@dataclass(frozen=True)
class Charge:
    """One modelled wait: an AWS operation (with its source) or a runbook's own sleep."""

    what: str
    seconds: float
    started_at_seconds: float
    thread: str
    basis: str
    """documented or estimated (automation.timings); a runbook's own sleep says so."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "what": self.what,
            "seconds": self.seconds,
            "started_at_seconds": self.started_at_seconds,
            "thread": self.thread,
            "basis": self.basis,
        }


@dataclass(frozen=True)
class Mark:
    modelled_seconds: float
    charges: int


class LatencyClock:
    """`now()`/`sleep()` for the runbook engine and boto3 waiters, on modelled time."""

    def __init__(
        self,
        cfg: PlatformConfig,
        *,
        start: datetime | None = None,
        scale: float = DEFAULT_SCALE,
        real_sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if scale < 0:
            raise ValueError(f"scale must be >= 0, got {scale}")
        self.cfg = cfg
        self.start = (start or datetime.now(UTC)).replace(microsecond=0)
        self.scale = scale
        self._real_sleep = real_sleep
        self._lock = threading.Lock()
        self._owner = threading.current_thread()
        self._lanes: dict[threading.Thread, _Lane] = {self._owner: _Lane(0.0)}
        self.charges: list[Charge] = []

    # --- thread tracking ---------------------------------------------------------

    def __enter__(self) -> LatencyClock:
        global _tracking_users
        with _tracking_lock:
            _tracking_users += 1
            threading.Thread.start = _start_recording_parent  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        global _tracking_users
        with _tracking_lock:
            _tracking_users -= 1
            if _tracking_users == 0:
                threading.Thread.start = _ORIGINAL_START  # type: ignore[method-assign]

    def _lane(self, thread: threading.Thread) -> _Lane:
        lane = self._lanes.get(thread)
        if lane is None:
            # Threads started outside `with clock:` have no recorded parent: they branch from the owner.
            parent = self._lane(getattr(thread, _PARENT_ATTRIBUTE, self._owner))
            # Where the starter stands, not where its other threads got to: a sibling that ran ahead before this
            # thread first read the clock (a loaded machine, no real sleep) must not push it back in line.
            lane = _Lane(parent.cursor)
            parent.children.append(lane)
            self._lanes[thread] = lane
        return lane

    # --- Clock -----------------------------------------------------------------

    def now(self) -> datetime:
        with self._lock:
            lane = self._lane(threading.current_thread())
            lane.cursor = lane.horizon()
            return self.start + timedelta(seconds=lane.cursor)

    def sleep(self, seconds: float) -> None:
        """A runbook's own wait (polling interval): modelled in full, slept `scale` times as long."""
        self._advance("sleep", seconds, "runbook polling interval")

    def join(self, threads: Sequence[threading.Thread]) -> None:
        """The calling thread waited for `threads` (already finished): it continues after the latest of them."""
        with self._lock:
            lane = self._lane(threading.current_thread())
            ends = [self._lanes[thread].horizon() for thread in threads if thread in self._lanes]
            lane.cursor = max([lane.cursor, *ends])

    def charge(self, operation: Op | str) -> float:
        """Wait for one AWS operation as long as `automation.timings` says it typically takes."""
        found = timing(operation, self.cfg)
        seconds = latency(operation, self.cfg)
        self._advance(found.operation.value, seconds, found.basis)
        return seconds

    def _advance(self, what: str, seconds: float, source: str) -> None:
        if seconds < 0:
            raise ValueError(f"cannot sleep {seconds} s")
        with self._lock:
            lane = self._lane(threading.current_thread())
            began = lane.horizon()
            lane.cursor = began + seconds
            self.charges.append(Charge(what, seconds, began, threading.current_thread().name, source))
        if self.scale and seconds:
            self._real_sleep(seconds * self.scale)

    # --- figures -----------------------------------------------------------------

    @property
    def modelled_seconds(self) -> float:
        """Modelled wall time since the start: parallel branches overlap."""
        with self._lock:
            return self._lanes[self._owner].horizon()

    def mark(self) -> Mark:
        """Where the clock stands, so a summary can cover one run (a failover) and not the provisioning."""
        with self._lock:
            return Mark(self._lanes[self._owner].horizon(), len(self.charges))

    def summary(self, since: Mark | None = None) -> dict[str, Any]:
        """The modelled wall time since `since`, and the operations charged (the small waits counted)."""
        start = since or Mark(0.0, 0)
        modelled = self.modelled_seconds - start.modelled_seconds
        with self._lock:
            charges = [charge for charge in self.charges[start.charges :] if charge.what != "sleep"]
        small = [charge for charge in charges if charge.what in SMALL_WAITS]
        return {
            "modelled_seconds": modelled,
            "scale": self.scale,
            "small_waits": {
                what: {
                    "count": sum(1 for c in small if c.what == what),
                    "seconds": sum(c.seconds for c in small if c.what == what),
                }
                for what in SMALL_WAITS
            },
            # Threads of a parallel group record in whatever order they run: sorted, the list repeats.
            "charges": [
                charge.to_dict()
                for charge in sorted(charges, key=lambda c: (c.started_at_seconds, c.thread, c.what))
                if charge.what not in SMALL_WAITS
            ],
        }
