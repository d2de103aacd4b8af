"""Clustering metrics: hand-computed cases, invariances, brute-force cross-checks, validation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from mvbench.metrics import (
    DEFINITIONS,
    METRICS,
    accuracy,
    ari,
    evaluate,
    f_score,
    nmi,
    purity,
)

FUNCS = {"acc": accuracy, "nmi": nmi, "ari": ari, "pur": purity, "f": f_score}


def test_hand_computed_two_classes_two_clusters() -> None:
    # true: A A A B B B ; pred: 0 0 1 1 1 1
    # Contingency (rows true, cols pred): [[2, 1], [0, 3]].
    y_true = [0, 0, 0, 1, 1, 1]
    y_pred = [0, 0, 1, 1, 1, 1]
    # ACC: best matching A->0, B->1 covers 2 + 3 = 5 of 6 (the other covers 1 + 0).
    assert accuracy(y_true, y_pred) == pytest.approx(5 / 6)
    # PUR: column maxima 2 and 3 -> 5 / 6.
    assert purity(y_true, y_pred) == pytest.approx(5 / 6)
    # F: pairs together in both = C(2,2) + C(3,2) = 4; in pred = C(2,2) + C(4,2) = 7;
    # in truth = C(3,2) + C(3,2) = 6. P = 4/7, R = 4/6, F = 2*4 / (7 + 6) = 8/13.
    assert f_score(y_true, y_pred) == pytest.approx(8 / 13)
    # ARI: index 4, expected 6 * 7 / C(6,2) = 2.8, max (6 + 7) / 2 = 6.5 -> 1.2 / 3.7 = 12/37.
    assert ari(y_true, y_pred) == pytest.approx(12 / 37)
    # NMI: MI = ln3/2 - ln2/3, H(true) = ln2, H(pred) = ln3 - 2 ln2 / 3;
    # MI / ((H_t + H_p) / 2) simplifies to (3 ln3 - 2 ln2) / (3 ln3 + ln2) ~ 0.4787.
    expected_nmi = (3 * math.log(3) - 2 * math.log(2)) / (3 * math.log(3) + math.log(2))
    assert nmi(y_true, y_pred) == pytest.approx(expected_nmi)
    assert expected_nmi == pytest.approx(0.478704, abs=1e-6)


def test_more_clusters_than_classes() -> None:
    # true: A A A B B B ; pred: 0 0 1 2 2 2 -> contingency [[2, 1, 0], [0, 0, 3]].
    y_true = [0, 0, 0, 1, 1, 1]
    y_pred = [0, 0, 1, 2, 2, 2]
    # ACC: square 3x3 matrix, best matching A->0, B->2 = 5; cluster 1 meets an empty class.
    assert accuracy(y_true, y_pred) == pytest.approx(5 / 6)
    # PUR: every cluster is pure -> 1 although the clustering is not the truth.
    assert purity(y_true, y_pred) == 1.0
    # F: both = C(2,2) + C(3,2) = 4, pred = 1 + 0 + 3 = 4, truth = 6 -> P = 1, R = 2/3, F = 0.8.
    assert f_score(y_true, y_pred) == pytest.approx(0.8)


def test_all_singleton_clusters() -> None:
    # true: A A B B ; pred: four singletons -> contingency [[1, 1, 0, 0], [0, 0, 1, 1]].
    y_true = [0, 0, 1, 1]
    y_pred = [0, 1, 2, 3]
    assert accuracy(y_true, y_pred) == pytest.approx(0.5)  # only 2 clusters can be matched
    assert purity(y_true, y_pred) == 1.0
    # No predicted pair at all -> no pair is recovered: F = 2*0 / (0 + 2) = 0.
    assert f_score(y_true, y_pred) == 0.0
    # ARI: index 0, expected 2 * 0 / 6 = 0, max (2 + 0) / 2 = 1 -> 0.
    assert ari(y_true, y_pred) == pytest.approx(0.0)
    # NMI: MI = H(true) = ln2, H(pred) = ln4 -> ln2 / ((ln2 + 2 ln2) / 2) = 2/3.
    assert nmi(y_true, y_pred) == pytest.approx(2 / 3)


def test_fewer_clusters_than_classes() -> None:
    # true: A A B B C C ; pred: 0 0 0 0 1 1 -> contingency [[2, 0], [2, 0], [0, 2]].
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 0, 0, 0, 1, 1]
    # ACC: only two classes can be matched: 2 + 2 of 6.
    assert accuracy(y_true, y_pred) == pytest.approx(2 / 3)
    # PUR: column maxima 2 and 2 -> 4 / 6.
    assert purity(y_true, y_pred) == pytest.approx(2 / 3)
    # F: both = 1 + 1 + 1 = 3, pred = C(4,2) + C(2,2) = 7, truth = 3 -> F = 6 / 10.
    assert f_score(y_true, y_pred) == pytest.approx(0.6)


def test_permuted_and_non_contiguous_labels_score_one() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 5, size=200)
    relabel = np.array([40, 7, 1000, 3, 12])  # a permutation onto sparse label values
    y_pred = relabel[y_true]
    assert evaluate(y_true, y_pred) == {name: pytest.approx(1.0) for name in METRICS}


def test_single_sample_and_single_cluster() -> None:
    assert evaluate([3], [0]) == {name: pytest.approx(1.0) for name in METRICS}
    # Every sample a singleton in both partitions: identical partitions, F defined as 1.
    assert f_score([0, 1, 2], [2, 0, 1]) == 1.0


def _brute_force_pairwise_f(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(y_true)), 2):
        same_true, same_pred = y_true[i] == y_true[j], y_pred[i] == y_pred[j]
        tp += same_true and same_pred
        fp += same_pred and not same_true
        fn += same_true and not same_pred
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)


def test_f_score_matches_pair_enumeration() -> None:
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(50):
        n = int(rng.integers(5, 40))
        y_true = rng.integers(0, int(rng.integers(1, 5)), size=n)
        y_pred = rng.integers(0, int(rng.integers(1, 7)), size=n)
        assert f_score(y_true, y_pred) == pytest.approx(_brute_force_pairwise_f(y_true, y_pred))
        checked += 1
    assert checked == 50


def _brute_force_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    # Try every one-to-one assignment of predicted clusters to classes (padded to equal size).
    size = max(y_true.max(), y_pred.max()) + 1
    best = max(
        int(np.sum(np.asarray(perm)[y_pred] == y_true))
        for perm in itertools.permutations(range(size))
    )
    return best / len(y_true)


def test_accuracy_matches_permutation_search() -> None:
    rng = np.random.default_rng(2)
    for _ in range(30):
        n = int(rng.integers(3, 30))
        y_true = rng.integers(0, int(rng.integers(1, 5)), size=n)
        y_pred = rng.integers(0, int(rng.integers(1, 6)), size=n)
        assert accuracy(y_true, y_pred) == pytest.approx(_brute_force_accuracy(y_true, y_pred))


def test_nmi_ari_agree_with_sklearn_on_raw_labels() -> None:
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 4, size=100) * 3 + 1  # non-contiguous values 1, 4, 7, 10
    y_pred = rng.integers(0, 6, size=100)
    scores = evaluate(y_true, y_pred)
    assert scores["nmi"] == pytest.approx(normalized_mutual_info_score(y_true, y_pred))
    assert scores["ari"] == pytest.approx(adjusted_rand_score(y_true, y_pred))


def test_evaluate_keys_types_and_agreement_with_single_metrics() -> None:
    rng = np.random.default_rng(4)
    y_true, y_pred = rng.integers(0, 3, size=60), rng.integers(0, 4, size=60)
    scores = evaluate(y_true, y_pred)
    assert tuple(scores) == METRICS == ("acc", "nmi", "ari", "pur", "f")
    assert set(DEFINITIONS) == set(METRICS)
    assert all("\n" not in text and text for text in DEFINITIONS.values())
    assert "pairwise" in DEFINITIONS["f"]
    for name, func in FUNCS.items():
        assert type(scores[name]) is float
        assert scores[name] == func(y_true, y_pred)


@pytest.mark.parametrize(
    "y_true, y_pred",
    [
        (np.array([0, 0, 1, 1], dtype=np.int32), np.array([1, 1, 0, 0], dtype=np.int64)),
        (np.array([0, 0, 1, 1], dtype=np.uint8), [1, 1, 0, 0]),
        (np.array([1.0, 1.0, 2.0, 2.0]), (5, 5, 6, 6)),  # .mat files store labels as doubles
        (torch.tensor([0, 0, 1, 1]), torch.tensor([1, 1, 0, 0])),
    ],
)
def test_accepts_integer_like_inputs(y_true: object, y_pred: object) -> None:
    assert evaluate(y_true, y_pred) == {name: pytest.approx(1.0) for name in METRICS}


@pytest.mark.parametrize("name", ["evaluate", *FUNCS])
def test_inputs_are_not_modified(name: str) -> None:
    func = evaluate if name == "evaluate" else FUNCS[name]
    y_true = np.array([4, 4, 2, 2, 9, 9, 9], dtype=np.int32)
    y_pred = np.array([1, 0, 0, 0, 7, 7, 1])
    true_copy, pred_copy = y_true.copy(), y_pred.copy()
    func(y_true, y_pred)
    np.testing.assert_array_equal(y_true, true_copy)
    np.testing.assert_array_equal(y_pred, pred_copy)
    assert y_true.dtype == np.int32
    # Read-only arrays would raise on any in-place write.
    y_true.flags.writeable = False
    y_pred.flags.writeable = False
    func(y_true, y_pred)
    as_list = [0, 0, 1, 1, 1, 0, 2]
    func(as_list, list(range(7)))
    assert as_list == [0, 0, 1, 1, 1, 0, 2]


@pytest.mark.parametrize(
    "y_true, y_pred, message",
    [
        ([0, 1, 1], [0, 1], r"y_true and y_pred differ in length \(3 vs 2\)"),
        (np.zeros((4, 1), dtype=int), [0, 0, 1, 1], r"y_true must be 1-D, got shape \(4, 1\)"),
        ([0, 1], np.zeros((2, 2), dtype=int), r"y_pred must be 1-D"),
        ([0, -1, 1], [0, 1, 1], r"y_true contains negative label -1; labels must be >= 0"),
        ([0, 1, 1], [0, 1, -3], r"y_pred contains negative label -3"),
        ([], [], r"y_true is empty"),
        ([0, 1], [0.5, 1.0], r"y_pred contains non-integer values"),
        ([0, 1], [np.nan, 1.0], r"y_pred contains non-integer values"),
        (["a", "b"], [0, 1], r"y_true has dtype <U1; labels must be integers"),
    ],
)
@pytest.mark.parametrize("name", ["evaluate", *FUNCS])
def test_invalid_inputs_raise_clear_errors(
    y_true: object, y_pred: object, message: str, name: str
) -> None:
    func = evaluate if name == "evaluate" else FUNCS[name]
    with pytest.raises(ValueError, match=message):
        func(y_true, y_pred)
