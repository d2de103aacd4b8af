"""Per-view feature scaling shared by every dataset loader.

Statistics are computed per feature over the observed rows only: scaling after zeroing the
missing rows (as one reference loader does) would make the zero rows of a view with negative
values look like data. Missing rows come out as zeros.
"""

from __future__ import annotations

import numpy as np

from mvbench.errors import MvbenchError
from mvbench.options import Option, choice

KINDS = {
    "none": "as stored",
    "minmax": "minmax: each feature of each view scaled to [0, 1] (constant features -> 0)",
    "standardize": "standardize: each feature of each view to zero mean, unit variance "
                   "(ddof=0; constant features -> 0)",
}


def preprocess_option(default: str, help_text: str) -> Option:
    """The ``preprocess`` option every dataset plugin declares: one of :data:`KINDS`."""
    return choice("preprocess", tuple(KINDS), help_text, default=default)


def preprocess_views(
    views: list[np.ndarray], kind: str, observed: np.ndarray | None = None
) -> tuple[list[np.ndarray], list[str]]:
    """Scale each view's features; returns float32 copies and the steps applied (for records).

    ``observed`` is an optional (N, V) bool mask; rows it marks missing neither contribute
    to the statistics nor keep their values (they become 0).
    """
    if kind not in KINDS:
        raise MvbenchError(f"unknown preprocessing {kind!r}; choose one of {', '.join(KINDS)}")
    out = []
    for v, x in enumerate(views):
        rows = np.ones(len(x), bool) if observed is None else observed[:, v]
        x = np.asarray(x, dtype=np.float64)
        if kind == "none" or not rows.any():
            y = x.copy()
        elif kind == "minmax":
            low, high = x[rows].min(axis=0), x[rows].max(axis=0)
            span = high - low
            y = (x - low) / np.where(span > 0, span, 1.0)
        else:
            mean, std = x[rows].mean(axis=0), x[rows].std(axis=0)
            y = (x - mean) / np.where(std > 0, std, 1.0)
        y[~rows] = 0.0
        out.append(y.astype(np.float32))
    steps = [] if kind == "none" else [KINDS[kind] + (
        "; statistics over observed rows" if observed is not None and not observed.all() else "")]
    return out, steps
