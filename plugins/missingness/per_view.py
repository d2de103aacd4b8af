"""Missingness ``per-view``: each view loses a fixed count, as in the MATLAB IMVC toolboxes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mvbench.errors import MvbenchError
from mvbench.hookspecs import hookimpl
from mvbench.options import Option
from mvbench.specs import Dataset, MissingnessSpec

DEFINITION = ("per-view: view v misses exactly round(rates[v]*N) samples; each view's samples are "
              "drawn at random among those that still keep another view, preferring the samples that "
              "have lost the fewest views, so no sample loses every view")


def per_view_mask(dataset: Dataset, options: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    n, n_views = dataset.n_samples, dataset.n_views
    rates = list(options["rates"])
    if len(rates) == 1:
        rates = rates * n_views
    if len(rates) != n_views:
        raise MvbenchError(f"per-view needs one rate per view: got {len(rates)} rates for "
                           f"{n_views} views of {dataset.name!r} (e.g. --rates {','.join(['0.3'] * n_views)})")
    counts = [int(round(r * n)) for r in rates]
    if max(counts) > n or sum(counts) > (n_views - 1) * n or (n_views == 1 and counts[0]):
        raise MvbenchError(f"per-view rates {rates} would leave samples with no view: the rates must sum "
                           f"to at most {n_views - 1} and each be below 1")
    mask = np.ones((n, n_views), dtype=bool)
    lost = np.zeros(n, dtype=np.int64)
    # Fewest-lost-first keeps the counts feasible for the views that come later; the random
    # fraction breaks ties uniformly.
    for v in sorted(range(n_views), key=lambda v: -counts[v]):
        priority = lost + rng.random(n)
        priority[lost >= n_views - 1] = np.inf
        chosen = np.argsort(priority, kind="stable")[: counts[v]]
        if np.isinf(priority[chosen]).any():
            raise MvbenchError(f"per-view rates {rates} cannot be met without emptying a sample; "
                               f"lower the largest rates")
        mask[chosen, v] = False
        lost[chosen] += 1
    return mask


SPEC = MissingnessSpec(
    name="per-view",
    make_mask=per_view_mask,
    description="Each view independently misses a fixed fraction of the samples.",
    definition=DEFINITION,
    options=(Option("rates", "list[float]", (0.3,),
                    "missing fraction per view (one value applies to every view)",
                    minimum=0.0, maximum=1.0),),
)


@hookimpl
def mvbench_missingness() -> list[MissingnessSpec]:
    return [SPEC]
