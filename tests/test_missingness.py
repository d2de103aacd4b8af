import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mvbench.errors import MvbenchError
from mvbench.missing import fill_missing, make_mask
from mvbench.options import resolve_options
from mvbench.registry import build_registry
from mvbench.specs import Dataset

REGISTRY = build_registry()


def dataset(n, n_views, name="toy"):
    views = [np.arange(n * 2, dtype=np.float32).reshape(n, 2) + v for v in range(n_views)]
    return Dataset(name=name, views=views, labels=np.zeros(n, dtype=np.int64), n_clusters=1)


def mask_for(data, mechanism, seed=0, **options):
    spec = REGISTRY.mechanism(mechanism)
    return make_mask(data, spec, resolve_options(spec.options, options), seed)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), n_views=st.integers(2, 6), rate=st.floats(0, 1), seed=st.integers(0, 2**31))
def test_mcar_invariants(n, n_views, rate, seed):
    mask = mask_for(dataset(n, n_views), "mcar", seed, rate=rate)
    incomplete = ~mask.all(axis=1)
    assert incomplete.sum() == int(round(rate * n))
    assert mask.any(axis=1).all()  # every sample keeps a view


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), data=st.data(), seed=st.integers(0, 2**31))
def test_per_view_invariants(n, data, seed):
    n_views = data.draw(st.integers(2, 5))
    rates = data.draw(st.lists(st.floats(0, 0.99), min_size=n_views, max_size=n_views))
    counts = [int(round(r * n)) for r in rates]
    feasible = max(counts) <= n and sum(counts) <= (n_views - 1) * n
    if not feasible:
        with pytest.raises(MvbenchError, match="no view|cannot be met"):
            mask_for(dataset(n, n_views), "per-view", seed, rates=rates)
        return
    mask = mask_for(dataset(n, n_views), "per-view", seed, rates=rates)
    assert (~mask).sum(axis=0).tolist() == counts
    assert mask.any(axis=1).all()


def test_mcar_subsets_are_uniform_over_nonempty_proper_subsets():
    mask = mask_for(dataset(6000, 3), "mcar", 1, rate=1.0)
    patterns, counts = np.unique(mask, axis=0, return_counts=True)
    assert len(patterns) == 6  # 2^3 - 2 subsets of missing views
    assert counts.min() > 900 and counts.max() < 1100


def test_mask_depends_only_on_dataset_mechanism_options_seed():
    data = dataset(100, 3)
    a = mask_for(data, "mcar", 3, rate=0.5)
    assert np.array_equal(a, mask_for(data, "mcar", 3, rate=0.5))
    assert not np.array_equal(a, mask_for(data, "mcar", 4, rate=0.5))
    assert not np.array_equal(a, mask_for(dataset(100, 3, name="other"), "mcar", 3, rate=0.5))


def test_impossible_settings_are_clear_errors():
    with pytest.raises(MvbenchError, match="needs at least 2 views"):
        mask_for(dataset(10, 1), "mcar", rate=0.5)
    with pytest.raises(MvbenchError, match="one rate per view"):
        mask_for(dataset(10, 3), "per-view", rates=[0.1, 0.2])
    with pytest.raises(MvbenchError, match="would leave samples with no view"):
        mask_for(dataset(10, 2), "per-view", rates=[0.6, 0.6])
    with pytest.raises(MvbenchError, match="above the maximum"):
        mask_for(dataset(10, 2), "mcar", rate=1.5)


def test_none_observes_everything():
    assert mask_for(dataset(7, 3), "none").all()


def test_fill_strategies_do_not_modify_inputs():
    data = dataset(4, 2)
    mask = np.array([[True, True], [False, True], [True, False], [True, True]])
    before = [x.copy() for x in data.views]
    filled = fill_missing(data.views, mask, "mean")
    assert all(np.array_equal(x, y) for x, y in zip(before, data.views))
    np.testing.assert_allclose(filled[0][1], data.views[0][[0, 2, 3]].mean(axis=0))
    np.testing.assert_allclose(filled[1][2], data.views[1][[0, 1, 3]].mean(axis=0))
    assert (fill_missing(data.views, mask, "zero")[0][1] == 0).all()
    with pytest.raises(MvbenchError, match="unknown fill strategy"):
        fill_missing(data.views, mask, "median")
