"""Label-free degeneracy checks: does a finished trial look collapsed, whatever its metrics?

A deep method can end in a degenerate state (one cluster, a constant embedding, a loss that
never moved) and still return labels, so a record would say ``ok``. :func:`degeneracy_reasons`
reads only what every trial has (the sizes of the predicted clusters and K) and what a method may
report in its extras, never the true labels, and returns one sentence per rule that fires. The
runner stores the sizes as ``record["cluster_sizes"]`` and the sentences as
``record["degenerate"]``; the metrics stay as computed. Boards apply the rules of the installed
version again to each stored record (:func:`record_reasons`), so a sharpened rule reaches records
made before it.

The thresholds below were fixed before any trial was flagged, from what each quantity means,
and are not tuned on any dataset's labels:

- one cluster: every sample has the same label (K >= 2);
- few clusters: the effective number of clusters, exp of the entropy of the predicted cluster
  proportions, is below K/2 (and more than one label is used). It equals the number of distinct
  labels when the clusters are equal in size, and a cluster of a handful of samples barely
  counts: 598 / 2 / 0 of 600 samples is 1.02 effective clusters, not 2 (CVCL on synthetic3d
  ended so; counting distinct labels, the first version of this rule, missed it);
- flat loss: a stage of at least ``FLAT_MIN_EPOCHS`` epochs whose epoch losses all lie within
  ``FLAT_RELATIVE`` of their largest magnitude, i.e. constant to float32 precision (a few ulps):
  nothing was learned in that stage;
- constant embedding: ``diagnostics.embedding_relative_std`` < ``EMBEDDING_RELATIVE_STD_MIN``:
  the samples' embeddings differ by less than 1% of their length;
- uniform assignments: ``diagnostics.assignment_max_mean`` (mean over samples of the largest
  soft assignment) has moved less than ``UNIFORM_MARGIN`` of the way from uniform (1/K) to
  one-hot (1).

Methods report the last two under ``extras["diagnostics"]`` (see :func:`diagnostics`); a method
that reports nothing is checked by the other rules only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

DIAGNOSTICS_KEY = "diagnostics"
FLAT_MIN_EPOCHS = 5
FLAT_RELATIVE = 1e-6
EMBEDDING_RELATIVE_STD_MIN = 1e-2
UNIFORM_MARGIN = 1e-2

RULES = {
    "one cluster": "every sample has the same predicted label (K >= 2)",
    "few clusters": "fewer than K/2 effective clusters (exp of the entropy of the predicted cluster proportions)",
    "flat loss": (f"a training stage of at least {FLAT_MIN_EPOCHS} epochs whose epoch losses are all "
                  f"within {FLAT_RELATIVE:g} (relative) of each other: constant to float precision"),
    "constant embedding": (f"the final embedding's std across samples, relative to its RMS row norm, is "
                           f"below {EMBEDDING_RELATIVE_STD_MIN:g}"),
    "uniform assignments": (f"the mean largest soft assignment has moved less than {UNIFORM_MARGIN:g} of "
                            f"the way from uniform (1/K) to one-hot (1)"),
}


def diagnostics(embedding: Tensor, assignments: Tensor | None = None) -> dict[str, float]:
    """The label-free statistics a method reports under ``extras["diagnostics"]``.

    ``embedding`` (N, d): the final per-sample representation (e.g. the views' features side by
    side). ``embedding_relative_std`` = sqrt(mean_i ||x_i - mean x||^2 / mean_i ||x_i||^2): 0 when
    every sample has the same embedding, at most 1, and unchanged by scaling. ``assignments``
    (N, K): the final soft assignments (rows on the simplex); ``assignment_max_mean`` = the mean
    over samples of the largest entry of a row (1/K when every row is uniform). Computed in
    float64 without gradient, so calling it changes nothing in a method's numerics.
    """
    with torch.no_grad():
        x = embedding.detach().double()
        power = (x * x).sum(dim=1).mean()
        spread = (x - x.mean(dim=0)).pow(2).sum(dim=1).mean()
        relative = math.sqrt(float(spread / power)) if float(power) > 0 else 0.0
        out = {"embedding_relative_std": relative}
        if assignments is not None:
            out["assignment_max_mean"] = float(assignments.detach().double().amax(dim=1).mean())
    return out


def cluster_sizes(labels: np.ndarray) -> list[int]:
    """The sample counts of the predicted clusters in use, largest first."""
    _, sizes = np.unique(np.asarray(labels), return_counts=True)
    return sorted((int(size) for size in sizes), reverse=True)


def degeneracy_reasons(sizes: Sequence[int], n_clusters: int, extras: Mapping[str, Any] | None) -> list[str]:
    """One sentence per degeneracy rule that fires (see the module docstring); empty when none.

    ``sizes`` are the predicted clusters' sample counts (:func:`cluster_sizes`; empty clusters
    may be included). ``extras`` is the method's output extras: ``loss_history`` (stage -> list
    of epoch losses, or stage -> {part: list} with the stage's loss under ``"total"``) and
    ``diagnostics``. Values a method reports in another shape are ignored, never an error.
    """
    extras = extras if isinstance(extras, Mapping) else {}
    reasons = _cluster_reasons(np.asarray([s for s in sizes if s > 0], dtype=np.int64), n_clusters)
    history = extras.get("loss_history")
    if isinstance(history, Mapping):
        reasons += [reason for stage, losses in history.items()
                    if (reason := _flat_stage(str(stage), losses)) is not None]
    found = extras.get(DIAGNOSTICS_KEY)
    found = found if isinstance(found, Mapping) else {}
    spread = _number(found.get("embedding_relative_std"))
    if spread is not None and spread < EMBEDDING_RELATIVE_STD_MIN:
        reasons.append(f"constant embedding: std across samples {spread:.3g} of the row norm "
                       f"(< {EMBEDDING_RELATIVE_STD_MIN:g})")
    top = _number(found.get("assignment_max_mean"))
    if top is not None and n_clusters >= 2:
        uniform = 1.0 / n_clusters
        if (top - uniform) / (1.0 - uniform) < UNIFORM_MARGIN:
            reasons.append(f"uniform assignments: mean largest assignment {top:.4f}, uniform "
                           f"{uniform:.4f} (K = {n_clusters})")
    return reasons


def record_reasons(record: Mapping[str, Any]) -> list[str]:
    """The rules of this version applied to a stored ok record: its ``cluster_sizes`` (records
    made before the runner stored them fall back to sizes the method reported in its extras),
    ``n_clusters`` and extras. A record with neither keeps the reasons stored when it ran."""
    extras = record.get("extras") if isinstance(record.get("extras"), Mapping) else {}
    sizes = record.get("cluster_sizes", extras.get("cluster_sizes"))
    n_clusters = record.get("n_clusters")
    if (not isinstance(sizes, Sequence) or not isinstance(n_clusters, int)
            or not all(isinstance(s, int) and s >= 0 for s in sizes)):
        return list(record.get("degenerate") or [])
    return degeneracy_reasons(sizes, n_clusters, extras)


def _cluster_reasons(sizes: np.ndarray, n_clusters: int) -> list[str]:
    if n_clusters < 2 or sizes.size == 0:
        return []
    n = int(sizes.sum())
    if sizes.size == 1:
        return [f"one cluster: all {n} samples have one label (K = {n_clusters})"]
    proportions = sizes / n
    effective = float(np.exp(-(proportions * np.log(proportions)).sum()))
    if effective < n_clusters / 2:
        return [f"few clusters: {effective:.2f} effective of K = {n_clusters} ({sizes.size} labels used, "
                f"largest cluster {sizes.max()} of {n} samples; fewer than K/2)"]
    return []


def _flat_stage(stage: str, losses: Any) -> str | None:
    if isinstance(losses, Mapping):
        losses = losses.get("total")
    if not isinstance(losses, Sequence) or len(losses) < FLAT_MIN_EPOCHS:
        return None
    values = [_number(v) for v in losses]
    if any(v is None for v in values):
        return None
    scale = max(abs(v) for v in values)
    if max(values) - min(values) > FLAT_RELATIVE * scale:
        return None
    return f"flat loss: stage {stage!r} stayed at {values[0]:.6g} for all {len(values)} epochs"


def _number(value: Any) -> float | None:
    """A finite float, or None for anything else (a plugin's extras are not trusted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
