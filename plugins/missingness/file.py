"""Missingness ``file``: the fixed missing-view pattern shipped inside the dataset file.

Reproduces published incomplete settings exactly (e.g. ``ngs-per0.5``, ``msrcv1-missing-0.5``):
the mask is the same for every seed, so only the methods' own randomness varies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mvbench.errors import MvbenchError
from mvbench.hookspecs import hookimpl
from mvbench.specs import Dataset, MissingnessSpec


def _datasets_with_masks() -> list[str]:
    from mvbench.registry import get_registry  # at call time: the registry imports this plugin

    return sorted(name for name, spec in get_registry().datasets.items()
                  if spec.summary.get("missing_definition"))


def _file_mask(dataset: Dataset, options: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    if dataset.observed is None:
        raise MvbenchError(
            f"dataset {dataset.name!r} carries no fixed missing-view pattern, so --missing file "
            f"has nothing to apply; use a dataset that does ({', '.join(_datasets_with_masks())}) "
            f"or a generated mechanism such as mcar")
    return dataset.observed.copy()


SPEC = MissingnessSpec(
    name="file",
    make_mask=_file_mask,
    description="The dataset file's own fixed missing-view pattern (NaN rows, missing_matrix, "
                "index or ind), identical for every seed.",
    definition="file: the fixed observed-view pattern stored in the dataset file (same mask for "
               "every seed); see the dataset's missing_definition",
)


@hookimpl
def mvbench_missingness() -> list[MissingnessSpec]:
    return [SPEC]
