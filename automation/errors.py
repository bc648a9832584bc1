"""The one error type the CLI shows to people."""

from __future__ import annotations


class DrctlError(Exception):
    """A failure with a message fit for an operator; the CLI exits non-zero."""

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.hint = hint
        self.exit_code = exit_code


class ProcessStillRunningError(DrctlError):
    """A process drctl started (a Pulumi CLI or one of its plugins) did not stop when told to.

    Nothing else may run against the stack while it might still change cloud resources: the runbook
    engine stops the run and keeps the stack lock.
    """
