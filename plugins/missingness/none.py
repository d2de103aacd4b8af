"""Missingness ``none``: every view of every sample is observed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mvbench.hookspecs import hookimpl
from mvbench.specs import Dataset, MissingnessSpec


def _all_observed(dataset: Dataset, options: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    return np.ones((dataset.n_samples, dataset.n_views), dtype=bool)


SPEC = MissingnessSpec(
    name="none",
    make_mask=_all_observed,
    description="Complete data: all views observed.",
    definition="complete: no view is missing",
)


@hookimpl
def mvbench_missingness() -> list[MissingnessSpec]:
    return [SPEC]
