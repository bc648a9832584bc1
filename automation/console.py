"""The consoles every drctl command prints through."""

from __future__ import annotations

import os
import sys

from rich.console import Console

# Piped output (CI logs, `make demo`) would otherwise wrap tables at rich's
# 80-column fallback; a terminal or an explicit COLUMNS keeps its own width.
_PIPED_WIDTH = 140


def _width(stream: object) -> int | None:
    is_terminal = getattr(stream, "isatty", lambda: False)()
    return None if is_terminal or "COLUMNS" in os.environ else _PIPED_WIDTH


console = Console(width=_width(sys.stdout))
err_console = Console(stderr=True, width=_width(sys.stderr))
