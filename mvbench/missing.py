"""Applying a missingness mechanism to a dataset, and filling missing views for methods that
do not handle them. A mask depends only on (dataset, mechanism, options, seed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mvbench.errors import MvbenchError
from mvbench.seeding import derive_seed
from mvbench.specs import Dataset, MissingnessSpec

FILL_STRATEGIES = {
    "mean": "missing rows of a view are set to the mean of that view's observed rows",
    "zero": "missing rows of a view are set to zero",
}


def make_mask(dataset: Dataset, mechanism: MissingnessSpec, options: Mapping[str, Any],
              seed: int) -> np.ndarray:
    """The observed-view mask (N, V) for this trial, validated.

    The generator is seeded from the dataset name, the mechanism, its options and the trial
    seed only, so every method of a trial sees the same mask.
    """
    if mechanism.legacy_seed:
        rng: Any = np.random.RandomState(seed)
    else:
        rng = np.random.default_rng(derive_seed("mask", dataset.name, mechanism.name, dict(options), seed))
    mask = np.asarray(mechanism.make_mask(dataset, options, rng), dtype=bool)
    expected = (dataset.n_samples, dataset.n_views)
    if mask.shape != expected:
        raise MvbenchError(f"missingness {mechanism.name!r} returned a mask of shape {mask.shape}, "
                           f"expected {expected}")
    if not mask.any(axis=1).all():
        raise MvbenchError(f"missingness {mechanism.name!r} left {int((~mask.any(axis=1)).sum())} "
                           f"samples with no observed view; every sample must keep one")
    return mask


def fill_missing(views: list[np.ndarray], mask: np.ndarray, strategy: str) -> list[np.ndarray]:
    """Copies of ``views`` with missing rows filled; the inputs are not modified."""
    if strategy not in FILL_STRATEGIES:
        raise MvbenchError(f"unknown fill strategy {strategy!r}; choose one of {', '.join(FILL_STRATEGIES)}")
    filled = []
    for v, x in enumerate(views):
        x = x.copy()
        observed = mask[:, v]
        x[~observed] = x[observed].mean(axis=0) if strategy == "mean" else 0.0
        filled.append(x)
    return filled


def blank_missing(views: list[np.ndarray], mask: np.ndarray) -> list[np.ndarray]:
    """Copies with missing rows set to NaN, so a method that reads them fails loudly."""
    out = []
    for v, x in enumerate(views):
        x = x.copy()
        x[~mask[:, v]] = np.nan
        out.append(x)
    return out
