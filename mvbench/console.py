"""The shared rich consoles and the formatting of numbers in tables."""

from __future__ import annotations

import math

from rich.console import Console

console = Console()
err_console = Console(stderr=True)


def mean_std(mean: float, std: float, digits: int = 4) -> str:
    """``0.9123 +- 0.0100``; the std is left out when undefined (one seed)."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if std is None or math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} +- {std:.{digits}f}"
