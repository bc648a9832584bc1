"""Cancellation scopes: whatever a runbook step starts stops when the step is cancelled.

The runbook engine opens one `CancelScope` per step (and per dry-run preview)
on the thread that runs it. Work that can be stopped registers how
(`register`); the Pulumi adapter does so for every CLI process it starts,
so a step timeout, Ctrl-C or a CI cancellation interrupts a `pulumi preview`
as surely as a `pulumi up`. Once a scope is cancelled nothing new may start in
it (`refuse_if_cancelled`): a preview that outran the deadline cannot be
followed by an update.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from automation.errors import DrctlError

Stop = Callable[[], None]


class CancelledError(DrctlError):
    """Work refused to start because its step was cancelled (timed out or interrupted)."""


class CancelScope:
    """The cancellation of one step: an event, how to stop what runs, and how urgently."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.cancelled = threading.Event()
        self.hurry = threading.Event()
        """Set by a repeated interrupt (a second Ctrl-C): graceful waits end early."""
        self._stops: list[Stop] = []
        self._mutex = threading.Lock()

    def register(self, stop: Stop) -> Callable[[], None]:
        """Run `stop` if the scope is cancelled while the work runs; returns the function that unregisters it."""
        with self._mutex:
            self._stops.append(stop)

        def unregister() -> None:
            with self._mutex:
                if stop in self._stops:
                    self._stops.remove(stop)

        return unregister

    def refuse_if_cancelled(self, what: str) -> None:
        if self.cancelled.is_set():
            raise CancelledError(
                f"not starting {what}: step {self.name or '(unnamed)'} was cancelled (timed out or interrupted)",
                hint="the run stops here; rerun the same command to resume it",
            )

    def cancel(self) -> list[str]:
        """Mark cancelled, then run every registered stop; returns the errors they raised."""
        self.cancelled.set()
        with self._mutex:
            stops = list(self._stops)
        problems = []
        for stop in stops:
            try:
                stop()
            except Exception as error:
                problems.append(f"{type(error).__name__}: {error}")
        return problems


_CURRENT: ContextVar[CancelScope | None] = ContextVar("drctl_cancel_scope", default=None)


def current() -> CancelScope | None:
    """The scope of the step running on this thread, if any."""
    return _CURRENT.get()


@contextmanager
def opened(scope: CancelScope) -> Iterator[CancelScope]:
    """Make `scope` the current one on this thread for the duration."""
    token = _CURRENT.set(scope)
    try:
        yield scope
    finally:
        _CURRENT.reset(token)
