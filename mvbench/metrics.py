"""Clustering metrics, defined as the reference code of the benchmarked methods computes them.

Every function takes the true labels and the predicted cluster labels as 1-D integer-like
arrays (lists, numpy arrays of any integer dtype, or integral floats as stored in .mat files).
Labels must be non-negative but need not be contiguous: they are remapped to 0..K-1 first.
No function modifies its inputs (reference code has computed purity by overwriting the label
array in place).

The F-score is the *pairwise* one (precision and recall over pairs of samples that share a
cluster), not the B-cubed F-score; the two give different numbers and both appear in papers.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

METRICS: tuple[str, ...] = ("acc", "nmi", "ari", "pur", "f")

DEFINITIONS: dict[str, str] = {
    "acc": "clustering accuracy: Hungarian matching of clusters to classes on the square "
    "count matrix of size max(#clusters, #classes), matched count / N",
    "nmi": "normalized mutual information, arithmetic-mean normalisation "
    "(sklearn normalized_mutual_info_score)",
    "ari": "adjusted Rand index (sklearn adjusted_rand_score)",
    "pur": "purity: sum over predicted clusters of the majority true-class count / N",
    "f": "pairwise F-score: harmonic mean of precision and recall over sample pairs that "
    "share a predicted cluster vs. a true class (not B-cubed)",
}

Labels = npt.ArrayLike


def _as_labels(y: Labels, name: str) -> np.ndarray:
    """Return ``y`` as a 1-D int64 array, raising ValueError on anything that is not labels."""
    a = np.asarray(y)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}; pass a flat array (y.ravel())")
    if a.size == 0:
        raise ValueError(f"{name} is empty; metrics need at least one sample")
    if np.issubdtype(a.dtype, np.floating):
        # .mat files store labels as doubles; accept them only when every value is integral.
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"{name} contains non-integer values; labels must be integers")
    elif not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} has dtype {a.dtype}; labels must be integers")
    if a.min() < 0:
        raise ValueError(f"{name} contains negative label {a.min()}; labels must be >= 0")
    return a.astype(np.int64, copy=False)


def _validate(y_true: Labels, y_pred: Labels) -> tuple[np.ndarray, np.ndarray]:
    """Check both label arrays and return them as contiguous codes 0..K-1 (new arrays)."""
    t = _as_labels(y_true, "y_true")
    p = _as_labels(y_pred, "y_pred")
    if t.shape[0] != p.shape[0]:
        raise ValueError(
            f"y_true and y_pred differ in length ({t.shape[0]} vs {p.shape[0]}); "
            "pass one prediction per sample"
        )
    # Remapping keeps matrices K x K rather than max(label) x max(label) for sparse label sets.
    t_codes = np.unique(t, return_inverse=True)[1].reshape(-1)
    p_codes = np.unique(p, return_inverse=True)[1].reshape(-1)
    return t_codes, p_codes


def _contingency(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Count matrix C[i, j] = #samples with true class i and predicted cluster j (int64)."""
    n_true, n_pred = int(t.max()) + 1, int(p.max()) + 1
    counts = np.bincount(t * n_pred + p, minlength=n_true * n_pred)
    return counts.reshape(n_true, n_pred)


def _accuracy(c: np.ndarray) -> float:
    # The reference pads to a square matrix so that surplus clusters (or classes) are matched
    # to empty rows (or columns) and count as errors; zero padding leaves the optimum unchanged.
    size = max(c.shape)
    square = np.zeros((size, size), dtype=np.int64)
    square[: c.shape[0], : c.shape[1]] = c
    rows, cols = linear_sum_assignment(square, maximize=True)
    return float(square[rows, cols].sum() / c.sum())


def _purity(c: np.ndarray) -> float:
    return float(c.max(axis=0).sum() / c.sum())


def _pairs(counts: np.ndarray) -> int:
    """Number of unordered pairs within groups of the given sizes, sum of n choose 2."""
    counts = counts.astype(np.int64, copy=False)
    return int((counts * (counts - 1) // 2).sum())


def _f_score(c: np.ndarray) -> float:
    # Pairs together in both partitions, in the prediction, and in the truth, from the
    # contingency table in O(K^2) instead of enumerating all O(N^2) sample pairs.
    together_both = _pairs(c)
    together_pred = _pairs(c.sum(axis=0))
    together_true = _pairs(c.sum(axis=1))
    if together_pred + together_true == 0:
        # Every sample is alone in both partitions: they agree exactly.
        return 1.0
    # Equals 2PR / (P + R) with P = both/pred, R = both/true, and is also defined (as 0)
    # when one partition has no pairs at all and precision or recall would be 0/0.
    return float(2 * together_both / (together_pred + together_true))


def accuracy(y_true: Labels, y_pred: Labels) -> float:
    """Clustering accuracy: best one-to-one matching of clusters to classes (Hungarian).

    Works when the number of clusters differs from the number of classes: unmatched
    clusters count as errors.
    """
    return _accuracy(_contingency(*_validate(y_true, y_pred)))


def nmi(y_true: Labels, y_pred: Labels) -> float:
    """Normalized mutual information with arithmetic-mean normalisation (sklearn)."""
    t, p = _validate(y_true, y_pred)
    return float(normalized_mutual_info_score(t, p, average_method="arithmetic"))


def ari(y_true: Labels, y_pred: Labels) -> float:
    """Adjusted Rand index (sklearn)."""
    t, p = _validate(y_true, y_pred)
    return float(adjusted_rand_score(t, p))


def purity(y_true: Labels, y_pred: Labels) -> float:
    """Fraction of samples that belong to the majority true class of their predicted cluster."""
    return _purity(_contingency(*_validate(y_true, y_pred)))


def f_score(y_true: Labels, y_pred: Labels) -> float:
    """Pairwise F-score (not B-cubed).

    Precision = pairs together in both partitions / pairs together in the prediction;
    recall = the same / pairs together in the truth; F = 2PR / (P + R). Returns 1.0 when
    every sample is a singleton in both partitions and 0.0 when only one partition has pairs.
    """
    return _f_score(_contingency(*_validate(y_true, y_pred)))


def evaluate(y_true: Labels, y_pred: Labels) -> dict[str, float]:
    """All metrics, keyed and ordered as ``METRICS``; the inputs are validated once."""
    t, p = _validate(y_true, y_pred)
    c = _contingency(t, p)
    return {
        "acc": _accuracy(c),
        "nmi": float(normalized_mutual_info_score(t, p, average_method="arithmetic")),
        "ari": float(adjusted_rand_score(t, p)),
        "pur": _purity(c),
        "f": _f_score(c),
    }
