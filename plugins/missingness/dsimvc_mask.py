"""Missingness ``dsimvc-mask``: the sample-level generator of DSIMVC's code (``get_mask``).

floor(rate * N) samples, chosen uniformly, are incomplete. Each draws u ~ U(0,1)^V and one
threshold tau ~ U(0,1) and keeps the views with u_v >= tau; a draw that keeps no view or every
view is redrawn. So the number of kept views is uniform on 1..V-1 and, given that number, the
kept subset is uniform (for two views: one view, each with probability 1/2). ``mcar`` differs:
it rounds rate * N and draws the lost subset uniformly among all non-empty proper subsets.

Seeding. The authors' generator is unseeded: it picks the rows with Python's ``random.shuffle``
and draws u and tau from numpy's global state. No seeded mask of theirs exists to reproduce, and
numpy's legacy ``RandomState(seed)`` could not replay Python's shuffle anyway, so this plugin
does not ask for ``legacy_seed``: it draws from the core's generator seeded by (dataset,
mechanism, rate, trial seed), like every other mechanism, with the same distribution as the
code. Draw order: one permutation for the rows, then rounds in which every row still pending
draws (u, tau) at once and keeps the draw if it leaves 1..V-1 views.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from mvbench.errors import MvbenchError
from mvbench.hookspecs import hookimpl
from mvbench.options import Option
from mvbench.specs import Dataset, MissingnessSpec

DEFINITION = ("sample-level (DSIMVC's get_mask): floor(rate*N) samples, chosen uniformly, are "
              "incomplete; each keeps the views with u_v >= tau (u ~ U(0,1)^V, tau ~ U(0,1)), "
              "redrawn until it keeps 1..V-1 views: a uniform number of kept views, then a uniform "
              "subset of that size")


def kept_views(n_rows: int, n_views: int, rng: np.random.Generator) -> np.ndarray:
    """(n_rows, n_views) bool, each row keeping 1..n_views-1 views by threshold draws."""
    kept = np.zeros((n_rows, n_views), dtype=bool)
    pending = np.arange(n_rows)
    while pending.size:
        u = rng.random((pending.size, n_views))
        tau = rng.random((pending.size, 1))
        keep = u >= tau
        count = keep.sum(axis=1)
        ok = (count > 0) & (count < n_views)
        kept[pending[ok]] = keep[ok]
        pending = pending[~ok]
    return kept


def dsimvc_sample_mask(dataset: Dataset, options: Mapping[str, Any], rng: np.random.Generator) -> np.ndarray:
    n, n_views = dataset.n_samples, dataset.n_views
    rate = options["rate"]
    n_incomplete = math.floor(n * rate)  # the code's floor, float rounding included
    if n_incomplete and n_views < 2:
        raise MvbenchError(f"dsimvc-mask rate {rate} needs at least 2 views; dataset {dataset.name!r} "
                           f"has 1 (use --missing none)")
    mask = np.ones((n, n_views), dtype=bool)
    if n_incomplete:
        rows = rng.permutation(n)[:n_incomplete]
        mask[rows] = kept_views(n_incomplete, n_views, rng)
    return mask


SPEC = MissingnessSpec(
    name="dsimvc-mask",
    make_mask=dsimvc_sample_mask,
    description="DSIMVC's sample-level missing views: threshold draws per incomplete sample "
                "(a uniform number of kept views).",
    definition=DEFINITION,
    options=(Option("rate", "float", 0.5, "fraction of samples with at least one missing view "
                    "(floor(rate*N) samples)", minimum=0.0, maximum=1.0),),
)


@hookimpl
def mvbench_missingness() -> list[MissingnessSpec]:
    return [SPEC]
