"""Local report files: a directory that cannot take them is named with the reason, never a lost result.

A command whose reports exist nowhere else (backup-verify) checks its directory before its work
(`unwritable_reason`) and refuses an unusable path before anything runs. A runbook does not: its reports
are in the control store, and a failover must not wait on a local copy. A write that fails afterwards (a
full disk) is a warning, and the report reaches the terminal instead.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

RUN_REPORTS_DIR = Path("out/reports")
"""Where drctl writes its run reports by default (runbooks, backup-verify); `out/` is ignored by git."""


def unwritable_reason(directory: Path) -> str | None:
    """Why files cannot be created in `directory` (created if missing), or None when they can."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        return os_error_text(error)
    return None


def os_error_text(error: OSError) -> str:
    """`Permission denied: out/reports/x.md`, without the errno and exception type a traceback would show."""
    reason = error.strerror or str(error) or type(error).__name__
    return f"{reason}: {error.filename}" if error.filename else reason
