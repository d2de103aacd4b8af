"""get-mask: COMPLETER/ProImp's mask generator reproduced draw for draw (legacy RandomState)."""

from __future__ import annotations

import numpy as np
import pytest

from mvbench.errors import MvbenchError
from mvbench.missing import make_mask
from mvbench.options import resolve_options
from mvbench.registry import build_registry
from mvbench.specs import Dataset
from mvbench_plugins.missingness import get_mask
from mvbench_plugins.missingness.get_mask import SPEC, authors_mask


def _dataset(n: int, n_views: int = 2, name: str = "dummy") -> Dataset:
    """Only N (and V) matter to the mask: dummy one-column views."""
    return Dataset(name=name, views=[np.zeros((n, 1), np.float32) for _ in range(n_views)],
                   labels=np.zeros(n, np.int64), n_clusters=1)


def _mask(dataset: Dataset, seed: int, **options) -> np.ndarray:
    return make_mask(dataset, SPEC, resolve_options(SPEC.options, options), seed)


@pytest.mark.parametrize(("n", "expected"), [
    (4485, [2286, 2284, 2220, 2235, 2211]),  # Scene-15, eta 0.5, the authors' mask seeds 1..5
    (600, [304, 295, 295, 295, 303]),  # CUB
])
def test_reproduces_the_authors_complete_sample_counts(n, expected):
    counts = [int(_mask(_dataset(n), seed, rate=0.5).all(axis=1).sum()) for seed in range(1, 6)]
    assert counts == expected


def test_mask_is_seeded_by_the_trial_seed_alone():
    a = _mask(_dataset(300, name="a"), 3, rate=0.5)
    b = _mask(_dataset(300, name="b"), 3, rate=0.5)  # another dataset name: same mask
    assert np.array_equal(a, b)
    assert not np.array_equal(a, _mask(_dataset(300), 4, rate=0.5))
    assert np.array_equal(a, authors_mask(np.random.RandomState(3), 2, 300, 0.5) > 0)


@pytest.mark.parametrize("rate", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_two_views_rate_is_the_fraction_of_incomplete_samples(rate):
    n = 1000
    mask = _mask(_dataset(n), 1, rate=rate)
    assert mask.any(axis=1).all()
    observed = mask.mean()
    assert abs(observed - (1 - rate / 2)) < 0.005  # the authors' acceptance rule
    # every incomplete sample misses exactly one of two views
    assert abs((~mask.all(axis=1)).mean() - rate) < 0.01


def test_edge_rates():
    assert _mask(_dataset(50), 1, rate=0.0).all()
    single = _mask(_dataset(50), 1, rate=1.0)
    assert (single.sum(axis=1) == 1).all()
    # rate 1 is one draw of the kept view: the one-hot of randint(0, 2, (N, 1))
    kept = np.random.RandomState(1).randint(0, 2, size=(50, 1))[:, 0]
    assert np.array_equal(single.argmax(axis=1), kept)


def _first_try(seed: int, n: int) -> np.ndarray:
    """The first try at eta = 0.5 re-drawn from the description: kept view, then two
    percent-grid draws (the second corrected for the first one's overlap with the kept view)."""
    rng = np.random.RandomState(seed)
    kept = np.eye(2, dtype=int)[rng.randint(0, 2, size=(n, 1))[:, 0]]
    extra = 2 * n * 0.75 - n
    first = rng.randint(0, 100, size=(n, 2)) < int(extra / (2 * n) * 100)
    overlap = int(((first + kept) > 1).sum())
    second = rng.randint(0, 100, size=(n, 2)) < int(extra / (1 - overlap / extra) / (2 * n) * 100)
    return (second + kept) > 0


def test_draw_order_and_redraw_rule():
    n, accepted = 400, 0
    for seed in range(20):
        candidate, mask = _first_try(seed, n), _mask(_dataset(n), seed, rate=0.5)
        if abs(0.75 - candidate.mean()) < 0.005:
            accepted += 1
            assert np.array_equal(candidate, mask)
        else:  # redrawn: the accepted mask comes from later draws
            assert not np.array_equal(candidate, mask)
            assert abs(0.75 - mask.mean()) < 0.005
    assert 0 < accepted < 20  # both branches were exercised


def test_more_views_draw_over_the_first_two_or_all():
    three = _dataset(500, n_views=3)
    mask = _mask(three, 1, rate=0.5)
    assert mask[:, 2].all()
    assert np.array_equal(mask[:, :2], _mask(_dataset(500), 1, rate=0.5))
    everywhere = _mask(three, 1, rate=0.5, views=3)
    assert everywhere.any(axis=1).all()
    assert abs(everywhere.mean() - (1 - 0.5 / 3)) < 0.005  # COMPLETER's code with view_num = 3
    with pytest.raises(MvbenchError, match="views=3 but dataset"):
        _mask(_dataset(50), 1, rate=0.5, views=3)


def test_spec_and_registry():
    assert SPEC.legacy_seed and SPEC.name == "get-mask"
    assert "fraction of samples missing one view" in SPEC.definition
    assert get_mask.mvbench_missingness() == [SPEC]
    registry = build_registry(objects=[("get-mask", get_mask)])
    assert registry.mechanism("get-mask") is SPEC
