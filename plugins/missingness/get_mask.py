"""Missingness ``get-mask``: the sample-level mask generator of COMPLETER (CVPR 2021) and ProImp
(IJCAI 2023), reproduced draw for draw.

The authors call ``np.random.seed(t)`` and then their ``get_mask(2, N, eta)``; this mechanism is
declared with ``legacy_seed=True``, so the core hands it ``np.random.RandomState(trial seed)``,
which yields the very numbers of that global generator. Their algorithm, for ``W`` views:

- ``eta / W`` is the fraction of (sample, view) entries to remove, so ``one_rate = 1 - eta / W``
  of the entries stay observed; for two views exactly ``eta`` of the samples miss one view.
- ``one_rate <= 1 / W``: every sample keeps one uniformly drawn view (one draw).
  ``one_rate == 1`` (eta = 0): nothing is missing.
- Otherwise, per try: every sample keeps one uniformly drawn view (``randint(0, W, (N, 1))``,
  one-hot); each entry is kept in addition with a Bernoulli draw on a percent grid
  (``randint(0, 100, (N, W)) < int(100 * ratio)``), first at the ratio that would give
  ``one_rate`` without overlap, then again with the ratio corrected for the overlap the first
  draw had with the kept views; the try is accepted when the observed fraction is within 0.005
  of ``one_rate``, else everything is drawn again.

The authors always call it with two views (Scene-15's first two of three, CUB's two). Option
``views`` (default 2) says over how many leading views of the dataset the draw runs; any later
view stays observed in every sample. ``views`` = the dataset's V runs the same algorithm over all
views, which is how COMPLETER's code generalises (then ``eta`` is no longer the fraction of
incomplete samples: each view misses about ``eta / V`` of the samples).

The authors one-hot the kept view with scikit-learn's OneHotEncoder, which drops a view number
that was never drawn (and their code then fails on the shape); here the one-hot always has
``W`` columns, which gives the same matrix whenever theirs exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mvbench.errors import MvbenchError
from mvbench.hookspecs import hookimpl
from mvbench.options import Option
from mvbench.specs import Dataset, MissingnessSpec

DEFINITION = ("COMPLETER/ProImp get_mask over the first `views` views (default 2; later views always "
              "observed): rate = eta, with 2 views the fraction of samples missing one view (1 - eta/2 "
              "of the entries observed; eta/W of the entries missing for W views); every sample keeps "
              "one uniform view plus Bernoulli percent-grid draws, redrawn until within 0.005 of "
              "target; numpy legacy RandomState(seed), as np.random.seed(seed) in the authors' code")

# The authors' acceptance threshold on |observed fraction - target|.
TOLERANCE = 0.005


def _one_hot(rng: np.random.RandomState, n: int, n_views: int) -> np.ndarray:
    """One uniformly drawn kept view per sample, as an (n, n_views) 0/1 int matrix."""
    kept = rng.randint(0, n_views, size=(n, 1))
    return np.eye(n_views, dtype=np.int64)[kept[:, 0]]


def authors_mask(rng: np.random.RandomState, n_views: int, n: int, rate: float) -> np.ndarray:
    """The (n, n_views) 0/1 matrix of the authors' get_mask(n_views, n, rate), drawing from
    ``rng`` the same numbers in the same order (and with the same float arithmetic)."""
    one_rate = 1.0 - rate / n_views
    if one_rate <= 1 / n_views:
        return _one_hot(rng, n, n_views)
    if one_rate == 1:
        return np.ones((n, n_views), dtype=np.int64)
    entries = n_views * n
    error = 1.0
    while error >= TOLERANCE:
        keep_one = _one_hot(rng, n, n_views)
        extra_ones = entries * one_rate - n  # observed entries needed beyond one per sample
        first = rng.randint(0, 100, size=(n, n_views)) < int(extra_ones / entries * 100)
        overlap = np.sum((first + keep_one) > 1)
        # The second draw asks for more, so that after removing the expected overlap with the
        # kept view the count comes out right.
        corrected = extra_ones / (1 - overlap / extra_ones)
        second = rng.randint(0, 100, size=(n, n_views)) < int(corrected / entries * 100)
        matrix = ((second + keep_one) > 0).astype(np.int64)
        error = abs(one_rate - np.sum(matrix) / entries)
    return matrix


def get_mask(dataset: Dataset, options: Mapping[str, Any], rng: np.random.RandomState) -> np.ndarray:
    """The observed mask (N, V): the authors' draw over the first ``views`` views, the rest observed."""
    n, n_views, drawn = dataset.n_samples, dataset.n_views, options["views"]
    if drawn > n_views:
        raise MvbenchError(f"get-mask views={drawn} but dataset {dataset.name!r} has {n_views} views; "
                           f"set views to at most {n_views}")
    mask = np.ones((n, n_views), dtype=bool)
    mask[:, :drawn] = authors_mask(rng, drawn, n, options["rate"]) > 0
    return mask


SPEC = MissingnessSpec(
    name="get-mask",
    make_mask=get_mask,
    description="COMPLETER/ProImp's get_mask reproduced exactly (numpy legacy RandomState seeded by "
                "the trial seed): with two views, rate = fraction of samples missing one view.",
    definition=DEFINITION,
    options=(
        Option("rate", "float", 0.5, "eta: with 2 views the fraction of samples missing one view "
               "(entries missing: eta / views)", minimum=0.0, maximum=1.0),
        Option("views", "int", 2, "number of leading views the draw runs over (the authors: 2); "
               "later views are observed in every sample", minimum=2),
    ),
    legacy_seed=True,
)


@hookimpl
def mvbench_missingness() -> list[MissingnessSpec]:
    return [SPEC]
