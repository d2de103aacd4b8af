"""The shared rich consoles and the formatting of numbers in tables."""

from __future__ import annotations

import math
import os

from rich.console import Console

# Without a terminal (CI logs, `| tee`), rich would wrap at 80 columns and split paths and URLs;
# there lines are as long as they need (unless $COLUMNS says otherwise).
LOG_WIDTH = 10_000


def _console(stderr: bool) -> Console:
    found = Console(stderr=stderr)
    if found.is_terminal or "COLUMNS" in os.environ:
        return found
    return Console(stderr=stderr, width=LOG_WIDTH, soft_wrap=True)


console = _console(stderr=False)
err_console = _console(stderr=True)


def mean_std(mean: float, std: float, digits: int = 4) -> str:
    """``0.9123 +- 0.0100``; the std is left out when undefined (one seed)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if std is None or math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} +- {std:.{digits}f}"
