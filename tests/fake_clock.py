"""The one fake clock of the tests: time moves only when something sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

FIXED_START = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


class FakeClock:
    """`now()`/`sleep()` for the engine and the AWS waiters; thread-safe, because parallel steps share it.

    Starts at `start`, or at the real time: moto stamps its own records with it.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self.current = (start or datetime.now(UTC)).replace(microsecond=0)
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[FakeClock], None] | None = None
        self._mutex = threading.Lock()

    def now(self) -> datetime:
        with self._mutex:
            return self.current

    def sleep(self, seconds: float) -> None:
        with self._mutex:
            self.sleeps.append(seconds)
            self.current += timedelta(seconds=seconds)
        if self.on_sleep:  # outside the lock: the hook may read the clock
            self.on_sleep(self)


def fixed_clock() -> FakeClock:
    """A clock at FIXED_START, for tests whose journals and reports must not depend on today."""
    return FakeClock(FIXED_START)
