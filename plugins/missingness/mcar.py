"""Missingness ``mcar``: the sample-level missing rate of DIMVC, DSIMVC and DIMVC-HIA."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mvbench.errors import MvbenchError
from mvbench.hookspecs import hookimpl
from mvbench.options import Option
from mvbench.specs import Dataset, MissingnessSpec

DEFINITION = ("sample-level: rate = fraction of samples with at least one missing view "
              "(round(rate*N) samples, chosen uniformly); each such sample loses a uniformly drawn "
              "non-empty proper subset of its views, so it keeps at least one")


def sample_level_mask(dataset: Dataset, options: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    n, n_views = dataset.n_samples, dataset.n_views
    rate = options["rate"]
    n_incomplete = int(round(rate * n))
    if n_incomplete and n_views < 2:
        raise MvbenchError(f"mcar rate {rate} needs at least 2 views; dataset {dataset.name!r} has 1 "
                           f"(use --missing none)")
    mask = np.ones((n, n_views), dtype=bool)
    if not n_incomplete:
        return mask
    rows = rng.permutation(n)[:n_incomplete]
    # A subset of views is a bitmask; 1 .. 2^V-2 are exactly the non-empty proper subsets.
    subsets = rng.integers(1, 2**n_views - 1, size=n_incomplete)
    bits = (subsets[:, None] >> np.arange(n_views)[None, :]) & 1
    mask[rows] = bits == 0
    return mask


SPEC = MissingnessSpec(
    name="mcar",
    make_mask=sample_level_mask,
    description="Missing completely at random, sample-level rate (the deep incomplete-MVC convention).",
    definition=DEFINITION,
    options=(Option("rate", "float", 0.5, "fraction of samples with at least one missing view",
                    minimum=0.0, maximum=1.0),),
)


@hookimpl
def mvbench_missingness() -> list[MissingnessSpec]:
    return [SPEC]
